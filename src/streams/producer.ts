import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { ChunkQueue } from '../engine/chunk-queue.js';
import { openBus, type Bus } from '../engine/open-bus.js';
import type { Publisher } from '../engine/contracts.js';
import { createPublisher } from '../engine/create-publisher.js';
import { resolveBusOptions, type ProducerOptions, type ResolvedBusOptions } from '../options.js';
import { destroyOnAbort } from './destroy-on-abort.js';

type Callback = (error?: Error | null) => void;

/** What a producer has published or a consumer has emitted so far. */
export interface TransferStats {
  readonly chunks: number;
  readonly bytes: number;
}

/**
 * Writes a byte stream onto a bus. A Node Writable: `pipeline(source,
 * producer)` works, and write() reports back-pressure once a whole block is
 * waiting to be published.
 *
 * Chunking: a chunk is published as soon as a block is full, or when input
 * pauses, meaning a turn of the event loop passed with no new write. So
 * a small message on an idle producer goes out at once, and a fast stream is
 * cut into full blocks.
 */
export class Producer extends Writable {
  readonly #options: ResolvedBusOptions;
  readonly #queue = new ChunkQueue();
  #bus: Bus | undefined;
  #publisher: Publisher | undefined;
  #pump: Promise<void> | undefined;
  #blocked: Callback | undefined;
  #failure: Error | undefined;
  readonly #stats = { chunks: 0, bytes: 0 };

  constructor(options: ProducerOptions) {
    // blockingRead changes nothing (see ProducerOptions), so only the bus options are kept.
    const resolved = resolveBusOptions(options);
    super({ highWaterMark: resolved.blockSize, decodeStrings: true });
    this.#options = resolved;
    destroyOnAbort(this, resolved.signal);
  }

  /** The path of the bus file. */
  get filename(): string {
    return this.#options.filename;
  }

  /** Chunks and bytes published so far. A 'chunk' event carries the same after each publish. */
  get stats(): TransferStats {
    return { ...this.#stats };
  }

  /** Publishes what was written, marks the end of the stream, and releases the bus. */
  async close(): Promise<void> {
    if (!this.writableEnded) this.end();
    await finished(this);
  }

  override _construct(callback: Callback): void {
    openBus(this.#options, 'producer').then((bus) => {
      this.#bus = bus;
      this.emit('bus', bus.info);
      // Setting up a mode's files can fail too (a file where a directory
      // belongs): that is this stream's error, not an unhandled rejection.
      try {
        this.#publisher = createPublisher(bus);
      } catch (error) {
        return callback(error as Error);
      }
      callback();
    }, callback);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: Callback): void {
    if (this.#failure) return callback(this.#failure);
    this.#queue.push(chunk);
    // Hold the caller back while a full block waits: that is the back-pressure.
    if (this.#queue.bytes >= this.#options.blockSize) this.#blocked = callback;
    else callback();
    this.#kick();
  }

  /** Starts publishing unless it is under way; a write landing as it stops restarts it. */
  #kick(): void {
    if (this.#pump || this.#failure) return;
    this.#pump = this.#drain().finally(() => {
      this.#pump = undefined;
      if (this.#queue.bytes > 0) this.#kick();
    });
  }

  override _final(callback: Callback): void {
    (async () => {
      while (this.#pump) await this.#pump;
      if (this.#failure) throw this.#failure;
      await this.#publishAll(true);
      await this.#publisher!.finish();
      this.#publisher!.close();
      await this.#bus!.close();
    })().then(() => callback(), (error: Error) => callback(error));
  }

  override _destroy(error: Error | null, callback: Callback): void {
    this.#publisher?.close();
    const bus = this.#bus;
    if (!bus) return callback(error);
    bus.close().then(() => callback(error), () => callback(error));
  }

  async #drain(): Promise<void> {
    try {
      await this.#publishAll(false);
    } catch (error) {
      this.#failure = error as Error;
      const blocked = this.#blocked;
      this.#blocked = undefined;
      if (blocked) blocked(this.#failure);
      else this.destroy(this.#failure);
    }
  }

  async #publishAll(ending: boolean): Promise<void> {
    const publisher = this.#publisher!;
    while (this.#queue.bytes > 0) {
      // Not a full block yet: give input one turn of the event loop to add
      // more before cutting a short chunk.
      if (!ending && this.#queue.bytes < this.#options.blockSize) {
        await nextTurn();
        if (this.#queue.bytes === 0) return;
      }
      // A full block goes out at once: only short chunks are held back (publisher.ts, LossyPublisher).
      const hold = this.#queue.bytes < this.#options.blockSize ? publisher.holdBeforeCut?.() : undefined;
      if (hold) await hold;
      // Full blocks already waiting go out together where the mode allows
      // it (multicast: one lock hold and one FILE update for the lot).
      const chunks = [this.#queue.take(this.#options.blockSize)];
      while (chunks.length < publisher.batch && this.#queue.bytes >= this.#options.blockSize) chunks.push(this.#queue.take(this.#options.blockSize));
      await publisher.publishAll(chunks);
      for (const chunk of chunks) {
        this.#stats.chunks += 1;
        for (const buffer of chunk) this.#stats.bytes += buffer.length;
        this.emit('chunk', this.#stats);
      }
      if (this.#blocked && this.#queue.bytes < this.#options.blockSize) {
        const blocked = this.#blocked;
        this.#blocked = undefined;
        blocked();
      }
    }
  }
}
