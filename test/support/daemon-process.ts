/**
 * Starts `contid run` as a child process for the daemon and end-to-end
 * tests, and resolves once its stderr shows it is ready.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { resolve } from 'node:path';

const MAIN = resolve(import.meta.dirname, '../../src/cli/main.js');

/** A `contid run` child process. */
export interface DaemonProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code once it exits. */
  readonly exited: Promise<number | null>;
}

export interface StartOptions {
  /** Text on stderr that means the daemon is ready ("Started:", "Listening on "). */
  readonly ready: string;
  readonly stdin?: 'ignore' | 'pipe';
  readonly timeoutMs?: number;
}

/**
 * Runs `contid run ARGS`. A daemon that is not ready in time is stopped, and
 * waited for, before the promise rejects: the caller then restores the audit
 * state, and a daemon still starting would install its rules after that.
 */
export async function startDaemonProcess(
  args: readonly string[],
  options: StartOptions,
): Promise<DaemonProcess> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const child = spawn(process.execPath, [MAIN, 'run', ...args], {
    stdio: [options.stdin ?? 'ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      void exited.finally(() => {
        fail(new Error(`contid run was not ready within ${timeoutMs} ms:\n${stderr}`));
      });
    }, timeoutMs);
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (stderr.includes(options.ready)) {
        clearTimeout(timer);
        ok();
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      fail(new Error(`contid run exited with code ${String(code)} before it was ready:\n${stderr}`));
    });
  });
  return { child, pid: child.pid ?? -1, stderr: () => stderr, exited };
}
