import { sleep } from '../util/abortable.js';
import type { ChangeWatcher } from './change-watcher.js';

/** No events at all: every wait is a plain sleep (`--no-file-monitoring`). */
export class PollWatcher implements ChangeWatcher {
  readonly namesChanges = false;
  readonly generation = 0;

  async changedSince(_seen: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    await sleep(timeoutMs, signal);
  }

  async close(): Promise<void> {}
}
