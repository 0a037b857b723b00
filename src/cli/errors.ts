/**
 * How the command line words system errors: "no space left on device
 * (ENOSPC)", without node's "ENOSPC: " prefix and ", write" suffix.
 */

/** The reason part of a "Cannot …: <why>" message for a system error. */
export function systemReason(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  // node writes "ENOENT: no such file or directory, open '/x/y'".
  const m = /^[A-Z0-9_]+: (.*?)(?:, [a-z_]+(?: '.*')?)?$/s.exec(err.message);
  const text = m?.[1] ?? err.message;
  return code === undefined || text.includes(code) ? text : `${text} (${code})`;
}
