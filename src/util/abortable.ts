import { abortError } from '../errors.js';

/**
 * The longest delay setTimeout takes (about 24.8 days); a longer one fires
 * at once with a warning. A wait that long ends early and is looked at
 * again: every wait re-reads the disk when it ends (--sleep-interval 1e20).
 */
const LONGEST_TIMER_MS = 2 ** 31 - 1;

/**
 * Waits for `promise`, a timeout, or an abort, whichever comes first. Used by
 * every wait in the engines so that close() and AbortSignal end them at once.
 */
export function waitFor<T>(promise: Promise<T> | undefined, timeoutMs: number, signal?: AbortSignal): Promise<T | undefined> {
  if (signal?.aborted) return Promise.reject(abortError());
  return new Promise<T | undefined>((resolve, reject) => {
    const timer = Number.isFinite(timeoutMs) ? setTimeout(() => finish(() => resolve(undefined)), Math.min(timeoutMs, LONGEST_TIMER_MS)) : undefined;
    const onAbort = (): void => finish(() => reject(abortError()));
    signal?.addEventListener('abort', onAbort, { once: true });
    let done = false;
    function finish(settle: () => void): void {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      settle();
    }
    promise?.then((value) => finish(() => resolve(value)), (error: unknown) => finish(() => reject(error)));
  });
}

export const sleep = (ms: number, signal?: AbortSignal): Promise<undefined> => waitFor<undefined>(undefined, ms, signal);
