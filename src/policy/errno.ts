/**
 * The errors a contid operation can be refused with. The names are the
 * kernel series' errnos; which rule gives which, and in what order they
 * are checked, is src/policy/rules.ts.
 */
export type ContidErrno = 'EINVAL' | 'EPERM' | 'ESRCH' | 'EBUSY' | 'EXDEV' | 'EAGAIN' | 'EEXIST' | 'ENOTUNIQ';

/** Why each errno is returned, for messages and docs. */
export const ERRNO_REASONS: Readonly<Record<ContidErrno, string>> = {
  EINVAL: 'the value is the unset value or not a decimal u64 (adopt: no live container has it)',
  EPERM: 'the caller is neither privileged nor delegated',
  ESRCH: 'the target does not exist or has exited',
  EBUSY: 'the target has children',
  EXDEV: 'the target is the caller, or a delegated caller asked for a non-descendant',
  EAGAIN: "the target's container is not known yet (its parent has not been seen); try again",
  EEXIST: 'the target already has a contid and this is not a nesting set',
  ENOTUNIQ: 'the ID is live and owned by another orchestrator, or live at all for a create-only set',
};
