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
