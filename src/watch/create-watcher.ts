import type { WatchMode } from '../options.js';
import type { ChangeWatcher } from './change-watcher.js';
import { ChokidarWatcher } from './chokidar-watcher.js';
import { DirectoryWatcher } from './directory-watcher.js';
import type { FileSystemInfo } from './file-system.js';
import { PollWatcher } from './poll-watcher.js';

/** Wakes on changes to the bus file FILE (chokidar), or never (polling). */
export async function watchFile(file: string, fileMonitoring: boolean): Promise<ChangeWatcher> {
  if (!fileMonitoring) return new PollWatcher();
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
  return watch === 'events' || (watch === 'auto' && !fileSystem.network);
}
