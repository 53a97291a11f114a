import path from 'node:path';
import type { WatchMode } from '../options.js';
import type { ChangeWatcher } from './change-watcher.js';
import { DirectoryWatcher } from './directory-watcher.js';
import type { FileSystemInfo } from './file-system.js';
import { PollWatcher } from './poll-watcher.js';

/** How an event-driven watcher learns of changes: the kernel's own events, or chokidar. */
export type EventBackend = 'kernel' | 'chokidar';

/**
 * Wakes on changes to the bus file FILE, or never (polling).
 *
 * The kernel backend watches FILE's directory and keeps only FILE's name:
 * one inotify event per publish and nothing else. chokidar re-reads and
 * stats the whole directory after every event in it; measured on a 1 GiB
 * back-pressure run, that doubled the consumer's CPU time (661 against
 * 352 ms busy per 256 MiB), which on a loaded machine is throughput.
 */
export async function watchFile(file: string, fileMonitoring: boolean, backend: EventBackend = 'kernel'): Promise<ChangeWatcher> {
  if (!fileMonitoring) return new PollWatcher();
  if (backend === 'kernel') {
    const base = path.basename(file);
    return new DirectoryWatcher(path.dirname(file), (name) => name === base);
  }
  // Loaded only when asked for: most runs never need chokidar.
  const { ChokidarWatcher } = await import('./chokidar-watcher.js');
  const watcher = new ChokidarWatcher(file);
  await watcher.ready();
  return watcher;
}

/** Wakes on the names in `dir` that `wanted` accepts, telling `onName` each one; or never (polling). */
export function watchDirectory(
  dir: string,
  fileMonitoring: boolean,
  wanted: (name: string) => boolean,
  onName?: (name: string) => void,
): ChangeWatcher {
  return fileMonitoring ? new DirectoryWatcher(dir, wanted, onName) : new PollWatcher();
}

/**
 * `auto` wakes on events except on network file systems, where events never
 * report what other hosts do: there every wait is a poll of --sleep-interval.
 */
export function usesEvents(watch: WatchMode, fileSystem: FileSystemInfo): boolean {
  return watch === 'events' || watch === 'chokidar' || (watch === 'auto' && !fileSystem.network);
}
