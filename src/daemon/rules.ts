/**
 * The audit rules contid needs: every process creation, exec and exit, on
 * both x86_64 arches, except the daemon's own (its worker threads and
 * netlink calls would otherwise feed back into the stream it reads):
 *
 *     -a always,exit -F arch=b64 -S clone,fork,vfork,clone3,execve,execveat,exit_group -F pid!=<self> -k contid
 *     -a always,exit -F arch=b32 -S fork,execve,clone,vfork,execveat,exit_group,clone3 -F pid!=<self> -k contid
 *
 * etc/audit/contid.rules is the same for auditd users, without the pid.
 */
import { normalizeRule, type AuditRule } from '../kernel/netlink.js';
import { syscallNumber, type AuditArch } from '../kernel/syscalls.js';

/** The key of contid's rules (`-k contid`). */
export const RULE_KEY = 'contid';

/** The lifecycle syscalls, by name; those an arch lacks are skipped. */
export const LIFECYCLE_SYSCALLS = [
  'clone',
  'fork',
  'vfork',
  'clone3',
  'execve',
  'execveat',
  'exit_group',
] as const;

const ARCHES: readonly AuditArch[] = ['b64', 'b32'];

function numbers(arch: AuditArch): number[] {
  const out: number[] = [];
  for (const name of LIFECYCLE_SYSCALLS) {
    const nr = syscallNumber(arch, name);
    if (nr !== undefined) out.push(nr);
  }
  return out;
}

/** The rules for a daemon whose pid is `selfPid`, in the form the kernel lists them. */
export function contidRules(selfPid: number): AuditRule[] {
  return ARCHES.map((arch) =>
    normalizeRule({
      list: 'exit',
      action: 'always',
      arch,
      syscalls: numbers(arch),
      fields: [{ name: 'pid', op: '!=', value: selfPid }],
      key: RULE_KEY,
    }),
  );
}

/**
 * The daemon pid a listed rule was installed for, when it is exactly one
 * of contid's own rules (any pid); null for anything else, including the
 * pid-less rules of etc/audit/contid.rules that auditd loads.
 */
export function contidRuleOwner(rule: AuditRule): number | null {
  if (rule.list !== 'exit' || rule.action !== 'always' || rule.key !== RULE_KEY) return null;
  if (rule.prepend === true || rule.arch === undefined) return null;
  const [field, ...rest] = rule.fields ?? [];
  if (field === undefined || rest.length > 0) return null;
  if (field.name !== 'pid' || field.op !== '!=' || typeof field.value !== 'number') return null;
  const expected = numbers(rule.arch);
  const got = rule.syscalls === 'all' || rule.syscalls === undefined ? [] : [...rule.syscalls];
  const same =
    expected.length === got.length && [...expected].sort((a, b) => a - b).every((n, i) => n === got[i]);
  return same ? field.value : null;
}

/** The auditctl text of the rules for auditd (no pid exclusion: auditd's pid is not contid's). */
export function auditdRulesText(): string {
  return ARCHES.map(
    (arch) =>
      `-a always,exit -F arch=${arch} -S ${LIFECYCLE_SYSCALLS.filter((n) => syscallNumber(arch, n) !== undefined).join(',')} -k ${RULE_KEY}`,
  ).join('\n');
}
