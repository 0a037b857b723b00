import type { Worker } from 'node:worker_threads';

/**
 * Waits for a reader worker that was told to stop: it notices within
 * `pollMs` (its receive timeout) and drains for at most as long. One that
 * has not exited after five polls and 5 s more is terminated. Resolves true
 * when it had to be terminated (it may then hold a socket open).
 */
export async function awaitWorkerExit(
  worker: Worker,
  exited: Promise<unknown>,
  pollMs: number,
): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    exited.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(
        () => {
          resolve(true);
        },
        pollMs * 5 + 5000,
      );
    }),
  ]);
  clearTimeout(timer);
  if (timedOut) await worker.terminate();
  return timedOut;
}
