import fs from 'node:fs';
import type { ChangeWatcher, NameFilter } from './change-watcher.js';
import { WakeSignal } from './wake-signal.js';

/**
 * Watches one directory through the kernel's own events (inotify via
 * fs.watch) and wakes on the names the caller wants, telling it each name.
 *
 * Used where many names come and go (segments, cursors). chokidar re-reads
 * and stats the whole directory on every event in a watched directory;
 * this costs nothing beyond the event (docs/performance.md, "Watchers").
 */
export class DirectoryWatcher implements ChangeWatcher {
  readonly #wake = new WakeSignal();
  readonly #watcher: fs.FSWatcher | undefined;

  constructor(dir: string, { wanted, onName }: NameFilter) {
    try {
      this.#watcher = fs.watch(dir, { persistent: true }, (_event, name) => {
        // No name means the kernel's queue overflowed: wake up and re-read.
        if (name === null) return this.#wake.bump();
        if (!wanted(name)) return;
        onName?.(name);
        this.#wake.bump();
      });
      // A failed watch degrades to polling at --sleep-interval, never to an error.
      this.#watcher.on('error', () => {});
    } catch {
      this.#watcher = undefined;
    }
  }

  /** A watch that could not be set up names nothing: the caller polls. */
  get namesChanges(): boolean {
    return this.#watcher !== undefined;
  }

  get generation(): number {
    return this.#wake.generation;
  }

  changedSince(seen: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.#wake.changedSince(seen, timeoutMs, signal);
  }

  async close(): Promise<void> {
    this.#watcher?.close();
    this.#wake.bump();
  }
}
