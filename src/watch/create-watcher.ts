import path from 'node:path';
import type { WatchMode } from '../options.js';
import type { ChangeWatcher, NameFilter } from './change-watcher.js';
import { DirectoryWatcher } from './directory-watcher.js';
import type { FileSystemInfo } from './file-system.js';
import { PollWatcher } from './poll-watcher.js';

/** How an event-driven watcher learns of changes: fs.watch (`--watch events`), or chokidar (`--watch chokidar`). */
export type EventBackend = 'events' | 'chokidar';

export interface WatchFileOptions {
  /** Whether to wake on events at all; false: a poll of --sleep-interval (usesEvents). */
  readonly events: boolean;
  readonly backend: EventBackend;
  /** Names beside FILE that wake the watcher too, where the backend can name them. */
  readonly names?: NameFilter | undefined;
}

/**
 * Wakes on changes to the bus file FILE (and the names beside it that
 * `names` wants), or never (polling).
 *
 * fs.watch watches FILE's directory and keeps only the wanted names: one
 * inotify event per publish and nothing else. chokidar re-reads and stats
 * the whole directory after every event in it, which doubled a consumer's
 * CPU time in the benchmarks (docs/performance.md); it names nothing.
 */
export async function watchFile(file: string, options: WatchFileOptions): Promise<ChangeWatcher> {
  if (!options.events) return new PollWatcher();
  if (options.backend === 'events') {
    const base = path.basename(file);
    const names = options.names;
    return new DirectoryWatcher(path.dirname(file), {
      wanted: names ? (name) => name === base || names.wanted(name) : (name) => name === base,
      ...(names?.onName && { onName: names.onName }),
    });
  }
  // Loaded only when asked for: most runs never need chokidar.
  const { ChokidarWatcher } = await import('./chokidar-watcher.js');
  const watcher = new ChokidarWatcher(file);
  await watcher.ready();
  return watcher;
}

/** Wakes on the names in `dir` that `names` wants, telling it each one; or never (polling). */
export function watchDirectory(dir: string, options: { readonly events: boolean; readonly names: NameFilter }): ChangeWatcher {
  return options.events ? new DirectoryWatcher(dir, options.names) : new PollWatcher();
}

/**
 * `auto` wakes on events except on network file systems, where events never
 * report what other hosts do: there every wait is a poll of --sleep-interval.
 */
export function usesEvents(watch: WatchMode, fileSystem: FileSystemInfo): boolean {
  return watch === 'events' || watch === 'chokidar' || (watch === 'auto' && !fileSystem.network);
}
