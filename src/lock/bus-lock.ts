/**
 * The mutual exclusion every writer of FILE (and every back-pressure reader)
 * holds. Engines only see this interface, so a strategy for file systems
 * that do not share flock between machines can slot in beside flock.
 */
export interface BusLock {
  /** Waits until this holder has the lock. Rejects with ERR_FILEBUS_ABORTED on abort. */
  acquire(signal?: AbortSignal): Promise<void>;
  /** Gives the lock up. Safe to call when not held. */
  release(): void;
  /** Releases and frees every resource; the lock cannot be used afterwards. */
  close(): void;
}

/** The files the lock strategies use, for a bus at `file` (named by wire/layout.ts, busPaths). */
export interface LockPaths {
  /** FILE itself. */
  readonly file: string;
  /** FILE.lock: the flock strategy's lock file (the reference's). */
  readonly lock: string;
  /** FILE.lock.d: the mkdir strategy's lock directory. */
  readonly lockDir: string;
  /** FILE.lock.d.stale: the guard one process holds while it removes a stale FILE.lock.d. */
  readonly lockGuard: string;
  /** FILE.lock-strategy: marks a bus that uses the mkdir strategy. */
  readonly strategyMarker: string;
}
