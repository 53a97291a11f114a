/**
 * Tells an engine that FILE may have changed. It is only ever a hint: the
 * engines re-read the disk after every wake-up, and every wait has a
 * timeout, so a missed or spurious event costs latency, never data.
 */
export interface ChangeWatcher {
  /**
   * Whether a wake-up comes with the names that changed (a directory
   * watcher's onName). Without (polling, chokidar), a caller that needs
   * to know what changed lists the directory after each wake-up.
   */
  readonly namesChanges: boolean;
  /** Moves forward whenever FILE may have changed. */
  readonly generation: number;
  /**
   * Resolves once `generation` differs from `seen`, or after `timeoutMs`.
   * Read `generation` before checking the disk and pass it here: a change
   * that happened in between then resolves at once instead of being lost.
   */
  changedSince(seen: number, timeoutMs: number, signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** Which names in a directory wake a watcher, and who is told each one. */
export interface NameFilter {
  readonly wanted: (name: string) => boolean;
  readonly onName?: (name: string) => void;
}
