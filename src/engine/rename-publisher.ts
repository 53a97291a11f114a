import fs from 'node:fs';
import { ioError } from '../errors.js';
import { removeQuietly, writeNewFile } from '../wire/chunk-file.js';
import { tempPath } from '../wire/layout.js';
import type { Publisher } from './contracts.js';
import type { Bus } from './open-bus.js';

/**
 * Writes the chunk to a fresh temporary file outside the lock (the name is
 * ours alone), then renames it over FILE under the lock, so readers only ever
 * open whole chunks and the lock is held for one rename.
 */
export abstract class RenamePublisher implements Publisher {
  /** FILE holds one chunk: each must be seen (lossy) or taken (back-pressure) before the next. */
  readonly batch = 1;
  protected readonly bus: Bus;
  #temp: string | undefined;

  constructor(bus: Bus) {
    this.bus = bus;
  }

  async publishAll(chunks: readonly (readonly Buffer[])[]): Promise<void> {
    for (const chunk of chunks) await this.publish(chunk);
  }

  protected async publish(buffers: readonly Buffer[]): Promise<void> {
    const temp = tempPath(this.bus.paths);
    this.#temp = temp;
    this.writeChunk(temp, buffers);
    try {
      await this.install(temp, buffers.reduce((sum, b) => sum + b.length, 0));
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

  /** Writes the chunk to the file `temp`, which does not exist yet. */
  protected writeChunk(temp: string, buffers: readonly Buffer[]): void {
    writeNewFile(temp, buffers, this.bus.options.fileMode);
  }

  /** Moves the written temporary file (`size` bytes) to FILE, holding the lock for the rename. */
  protected abstract install(temp: string, size: number): Promise<void>;

  protected rename(temp: string): void {
    try {
      fs.renameSync(temp, this.bus.paths.file);
    } catch (error) {
      throw ioError('publish to', this.bus.paths.file, error);
    }
    this.#temp = undefined;
  }
}
