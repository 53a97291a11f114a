import path from 'node:path';
import chokidar, { type FSWatcher } from 'chokidar';
import type { ChangeWatcher } from './change-watcher.js';
import { WakeSignal } from './wake-signal.js';

/**
 * Wakes on chokidar's raw events for FILE, watching FILE's directory
 * (depth 0). Used by lossy and back-pressure consumers with `--watch
 * chokidar`; by default they use DirectoryWatcher, which costs nothing per
 * event beyond the event itself.
 *
 * The directory, not FILE itself: a watch on FILE follows one inode, and
 * chokidar re-attaches it to the new FILE only after an asynchronous stat,
 * so a replacement landing in that gap makes no event (lossy consumers
 * missed chunks under load), and FILE coming back after removal
 * (back-pressure) is noticed late. The directory's own events name every
 * rename into it and every removal. The price: chokidar re-reads and stats
 * the whole directory on every event in it, so a busy bus belongs in a
 * directory of its own (docs/performance.md, "Watchers").
 *
 * Raw events, not chokidar's 'add' and 'change': those are filtered by
 * mtime and throttled, and miss most of a quick run of renames.
 */
export class ChokidarWatcher implements ChangeWatcher {
  readonly namesChanges = false;
  readonly #wake = new WakeSignal();
  readonly #watcher: FSWatcher;
  readonly #ready: Promise<void>;

  constructor(file: string) {
    const base = path.basename(file);
    const dir = path.dirname(file);
    this.#watcher = chokidar.watch(dir, {
      atomic: false,
      ignoreInitial: true,
      ignorePermissionErrors: true,
      persistent: true,
      depth: 0,
      // Everything inside the directory is ignored, FILE included: chokidar
      // would otherwise put a watch of its own on FILE and stat it on every
      // change. The directory watch alone still reports FILE's name.
      ignored: (p: string) => p !== dir,
    });
    this.#watcher.on('raw', (_event: string, rawPath: string) => {
      if (path.basename(String(rawPath)) === base) this.#wake.bump();
    });
    // A failed watch degrades to polling at --sleep-interval, never to an error.
    this.#watcher.on('error', () => {});
    this.#ready = new Promise((resolve) => this.#watcher.once('ready', () => resolve()));
  }

  /** Resolves once the underlying watch is in place. */
  ready(): Promise<void> {
    return this.#ready;
  }

  get generation(): number {
    return this.#wake.generation;
  }

  changedSince(seen: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return this.#wake.changedSince(seen, timeoutMs, signal);
  }

  async close(): Promise<void> {
    await this.#watcher.close();
    this.#wake.bump();
  }
}
