/**
 * Bounded waits: every wait in the tests names what it waits for, so a
 * hang fails naming what did not happen instead of as a test timeout.
 */

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves like `promise`, or rejects naming `what` after `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface UntilOptions {
  /** How often to look (default 5 ms). */
  readonly everyMs?: number;
  /** More to say when it times out (the state it was waiting on). */
  readonly detail?: () => string;
}

/**
 * Polls `check` until it returns true; throws naming `what` after
 * `timeoutMs`. A check that throws ENOENT counts as not yet (what it looks
 * at has not been created).
 */
export async function until(check: () => boolean, what: string, timeoutMs = 30_000, options: UntilOptions = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const look = (): boolean => {
    try {
      return check();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
  };
  while (!look()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${options.detail ? `: ${options.detail()}` : ''}`);
    await delay(options.everyMs ?? 5);
  }
}
