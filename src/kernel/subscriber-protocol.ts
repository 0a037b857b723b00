/**
 * What every netlink subscriber's main thread (subscriber.ts) and worker
 * share, whatever they read: the stop slot and the reports about the
 * worker's socket. Each subscriber's protocol file adds its own slots and
 * reports. Kept apart so that a worker imports no main-thread code.
 */

/** Control slot every subscriber worker watches: set to 1 to make it drain its socket and exit. */
export const CONTROL_STOP = 0;

/** The reports every subscriber worker sends, besides its own kinds. */
export type SubscriberReport =
  | { readonly kind: 'ready'; readonly fd: number }
  | { readonly kind: 'closed' }
  | { readonly kind: 'error'; readonly message: string; readonly errno?: number };
