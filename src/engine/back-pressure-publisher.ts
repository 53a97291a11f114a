import fs from 'node:fs';
import type { ChangeWatcher } from '../watch/change-watcher.js';
import { writeIntoSpare } from '../wire/spare-chunk.js';
import { RenamePublisher } from './rename-publisher.js';

/**
 * Back-pressure: FILE existing means a consumer has not taken the last chunk
 * yet, so wait until it is gone. The check is repeated under the lock
 * because another producer may have published in between.
 *
 * On a network file system this host's cache can show FILE for a second
 * after a consumer on another host removed it: the bus view (bus-view.ts)
 * then asks the server, since replacing a chunk nobody took would lose it.
 */
export class BackPressurePublisher extends RenamePublisher {
  #watcher: ChangeWatcher | undefined;
  /** The permission bits of this producer's new files: only a spare with the same is reused. */
  #mode = this.bus.options.fileMode;

  /** Into the spare a consumer left (wire/spare-chunk.ts) when there is one, where the bus keeps spares. */
  protected override writeChunk(temp: string, buffers: readonly Buffer[]): void {
    const spares = this.bus.view.keepsSpare;
    if (spares && this.#mode !== undefined && writeIntoSpare(this.bus.paths, temp, buffers, this.#mode)) return;
    super.writeChunk(temp, buffers);
    // No --file-mode: whatever the umask made of 0666, learned from the first new file.
    if (spares && this.#mode === undefined) this.#mode = fs.statSync(temp).mode & 0o7777;
  }

  protected async install(temp: string): Promise<void> {
    const { paths, lock, signal, options, view } = this.bus;
    const watcher = (this.#watcher ??= this.bus.watchDirectory(paths.dir, { wanted: (name) => name === paths.base }));
    for (;;) {
      const seen = watcher.generation;
      if (view.hasChunk()) {
        await watcher.changedSince(seen, options.sleepIntervalMs, signal);
        continue;
      }
      await lock.acquire(signal);
      try {
        if (!view.holdsChunk()) {
          this.rename(temp);
          return;
        }
      } finally {
        lock.release();
      }
      // Another producer was faster: wait for its chunk to be taken.
      await watcher.changedSince(seen, options.sleepIntervalMs, signal);
    }
  }

  /** The empty chunk is the reference's end-of-stream marker. */
  override async finish(): Promise<void> {
    await this.publish([]);
  }
}
