// The kernel audit session of the benchmarks that touch kernel audit (exec-cpu.mjs; capture.sh
// takes the same lock with flock): the machine-wide lock the tests take too, and the status and
// rule snapshots a run restores.
//
// Kernel audit state is shared by the whole machine: a run holds the lock for its whole length,
// snapshots `auditctl -s` and `auditctl -l` first, and puts back what it changed.
import { spawn, spawnSync } from 'node:child_process';

/** The lock every kernel test and benchmark holds while it changes audit state. */
export const LOCK = '/run/contid-audit-test.lock';

/** Runs a command and returns spawnSync's result; throws when it fails (unless allowFail). */
export function run(cmd, args, { allowFail = false } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw r.error;
  if (r.status !== 0 && !allowFail) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
  }
  return r;
}

/** `auditctl -s` as numbers: enabled, pid, backlog_limit, lost, backlog... */
export function auditStatus() {
  const out = {};
  for (const line of run('auditctl', ['-s']).stdout.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && /^-?\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}

/** `auditctl -l`, a rule a line. */
export function auditRules() {
  return run('auditctl', ['-l'])
    .stdout.split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** Puts `enabled` and `backlog_limit` back as `saved` (an auditStatus()) had them; never sets 2. */
export function restoreSettings(saved) {
  const now = auditStatus();
  if (now.backlog_limit !== saved.backlog_limit) run('auditctl', ['-b', String(saved.backlog_limit)]);
  if (now.enabled !== saved.enabled && (saved.enabled === 0 || saved.enabled === 1)) {
    run('auditctl', ['-e', String(saved.enabled)]);
  }
}

/**
 * Takes {@link LOCK}, waiting up to `waitSeconds`; resolves with the function that releases it.
 * flock keeps the lock while `cat` reads our pipe: when node exits, even by SIGKILL, the pipe
 * closes and the lock is released. Its own session, so a Ctrl-C does not release the lock before
 * the state is restored.
 */
export async function takeLock(waitSeconds) {
  const helper = spawn(
    'flock',
    ['-o', '-w', String(waitSeconds), LOCK, 'sh', '-c', 'echo locked; exec cat'],
    {
      detached: true,
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  helper.stdout.setEncoding('utf8');
  const ok = await new Promise((resolve) => {
    helper.stdout.on('data', (d) => d.includes('locked') && resolve(true));
    helper.on('exit', () => resolve(false));
  });
  if (!ok) throw new Error(`could not take ${LOCK} within ${waitSeconds} s`);
  return () => helper.stdin.end();
}
