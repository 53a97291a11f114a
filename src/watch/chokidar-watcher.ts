import path from 'node:path';
import chokidar, { type FSWatcher } from 'chokidar';
import { waitFor } from '../util/abortable.js';
import type { ChangeWatcher } from './change-watcher.js';

/**
 * Watches FILE's directory with chokidar and counts its raw events for
 * FILE's name.
 *
 * The directory, not FILE: FILE is replaced by rename, and a watch on the
 * file itself follows the old inode. Raw events, not chokidar's 'add' and
 * 'change': those are filtered by mtime and throttled, and a measured run
 * of 267 renames and unlinks produced only 91 of them, while raw events
 * came for all 267 (p50 0.33 ms after the rename).
 */
export class ChokidarWatcher implements ChangeWatcher {
  #generation = 0;
  #wake: (() => void) | undefined;
  #wakePromise: Promise<void> | undefined;
  readonly #watcher: FSWatcher;
  readonly #ready: Promise<void>;

  constructor(file: string) {
    const dir = path.dirname(file);
    const base = path.basename(file);
    this.#watcher = chokidar.watch(dir, {
      depth: 0,
      atomic: false,
      ignoreInitial: true,
      ignorePermissionErrors: true,
      persistent: true,
      // chokidar stats what it does not ignore; only FILE matters here.
      ignored: (p: string) => p !== dir && path.basename(p) !== base,
    });
    this.#watcher.on('raw', (_event: string, rawPath: string) => {
      if (path.basename(String(rawPath)) === base) this.#bump();
    });
    // Watch failures degrade to polling at --sleep-interval, never to an error.
    this.#watcher.on('error', () => {});
    this.#ready = new Promise((resolve) => this.#watcher.once('ready', () => resolve()));
  }

  get generation(): number {
    return this.#generation;
  }

  /** Resolves once the underlying inotify watch is in place. */
  ready(): Promise<void> {
    return this.#ready;
  }

  async changedSince(seen: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.#generation !== seen) return;
    this.#wakePromise ??= new Promise<void>((resolve) => { this.#wake = resolve; });
    await waitFor(this.#wakePromise, timeoutMs, signal);
  }

  async close(): Promise<void> {
    this.#bump();
    await this.#watcher.close();
  }

  #bump(): void {
    this.#generation++;
    const wake = this.#wake;
    this.#wake = undefined;
    this.#wakePromise = undefined;
    wake?.();
  }
}
