import type { ChangeWatcher } from './change-watcher.js';
import { ChokidarWatcher } from './chokidar-watcher.js';
import { PollWatcher } from './poll-watcher.js';

export async function createWatcher(file: string, fileMonitoring: boolean): Promise<ChangeWatcher> {
  if (!fileMonitoring) return new PollWatcher();
  const watcher = new ChokidarWatcher(file);
  await watcher.ready();
  return watcher;
}
