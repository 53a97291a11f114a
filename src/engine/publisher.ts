import fs from 'node:fs';
import { ioError } from '../errors.js';
import { fileExists, removeQuietly, writeNewFile } from '../wire/chunk-file.js';
import { tempPath } from '../wire/paths.js';
import { chunkOnServer, listed } from '../wire/server-view.js';
import type { ChangeWatcher } from '../watch/change-watcher.js';
import { MulticastPublisher } from './multicast-publisher.js';
import type { Bus } from './open-bus.js';

/** Publishes chunks onto a bus in one mode. */
export interface Publisher {
  /** Publishes one chunk made of these buffers; resolves once it is visible at FILE. */
  publish(buffers: readonly Buffer[]): Promise<void>;
  /** Marks the end of the stream, where the mode has a marker. */
  finish(): Promise<void>;
  /** Removes a temporary file left by an interrupted publish. */
  discard(): void;
  /** Lets go of what the publisher holds on the bus (after finish, or when aborted). */
  close(): void;
}

export function createPublisher(bus: Bus): Publisher {
  switch (bus.options.mode) {
    case 'lossy': return new LossyPublisher(bus);
    case 'back-pressure': return new BackPressurePublisher(bus);
    case 'multicast': return new MulticastPublisher(bus);
  }
}

/**
 * Writes the chunk to a fresh temporary file outside the lock (the name is
 * ours alone), then renames it over FILE under the lock, so readers only ever
 * open whole chunks and the lock is held for one rename.
 */
abstract class RenamePublisher implements Publisher {
  protected readonly bus: Bus;
  #temp: string | undefined;

  constructor(bus: Bus) {
    this.bus = bus;
  }

  async publish(buffers: readonly Buffer[]): Promise<void> {
    const temp = tempPath(this.bus.paths);
    this.#temp = temp;
    writeNewFile(temp, buffers, this.bus.options.fileMode);
    try {
      await this.install(temp);
    } finally {
      this.discard();
    }
  }

  async finish(): Promise<void> {}

  discard(): void {
    if (this.#temp !== undefined) removeQuietly(this.#temp);
    this.#temp = undefined;
  }

  close(): void {
    this.discard();
  }

  /** Moves the written temporary file to FILE, holding the lock for the rename. */
  protected abstract install(temp: string): Promise<void>;

  protected rename(temp: string): void {
    try {
      fs.renameSync(temp, this.bus.paths.file);
    } catch (error) {
      throw ioError('publish to', this.bus.paths.file, error);
    }
    this.#temp = undefined;
  }
}

/** Lossy multicast: replace FILE whatever it holds; consumers that did not look in time miss the old chunk. */
class LossyPublisher extends RenamePublisher {
  protected async install(temp: string): Promise<void> {
    await this.bus.lock.acquire(this.bus.signal);
    try {
      this.rename(temp);
    } finally {
      this.bus.lock.release();
    }
  }
}

/**
 * Back-pressure: FILE existing means a consumer has not taken the last chunk
 * yet, so wait until it is gone. The check is repeated under the lock
 * because another producer may have published in between.
 *
 * On a network file system this host's cache can show FILE for a second
 * after a consumer on another host removed it: the wait asks the server's
 * listing instead, and the check under the lock asks the server itself
 * (server-view.ts), since replacing a chunk nobody took would lose it.
 */
class BackPressurePublisher extends RenamePublisher {
  #watcher: ChangeWatcher | undefined;

  protected async install(temp: string): Promise<void> {
    const { paths, lock, signal, options } = this.bus;
    const watcher = (this.#watcher ??= this.bus.watchDirectory(paths.dir, (name) => name === paths.base));
    for (;;) {
      const seen = watcher.generation;
      if (this.bus.network ? listed(paths.dir, paths.base) : fileExists(paths.file)) {
        await watcher.changedSince(seen, options.sleepIntervalMs, signal);
        continue;
      }
      await lock.acquire(signal);
      try {
        if (!(this.bus.network ? chunkOnServer(paths) : fileExists(paths.file))) {
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
