import { Readable } from 'node:stream';
import { openChunkSource } from '../engine/chunk-source.js';
import type { ChunkSource, ConsumerPosition } from '../engine/contracts.js';
import { openBus, type Bus } from '../engine/open-bus.js';
import { FilebusError, abortError } from '../errors.js';
import { checkStartPosition, invalidOption, resolveBusOptions, type ConsumerOptions, type ResolvedBusOptions, type StartPosition } from '../options.js';
import { destroyOnAbort } from './destroy-on-abort.js';
import type { TransferStats } from './producer.js';
import { checkConsumerName } from '../wire/cursor-file.js';
import { reusedReadBuffer, type ReadBuffer } from '../util/read-buffer.js';

const COALESCE_BYTES = 1024 * 1024;

/** ConsumerOptions checked once, defaults filled in, frozen: what a Consumer passes down. */
interface ResolvedConsumerOptions {
  readonly bus: ResolvedBusOptions;
  readonly name: string | undefined;
  readonly from: StartPosition | undefined;
  readonly reuseBuffers: boolean;
  readonly coalesce: boolean;
}

function resolveConsumerOptions(options: ConsumerOptions): ResolvedConsumerOptions {
  const bus = resolveBusOptions(options);
  const { name, from, reuseBuffers, coalesce } = options;
  return Object.freeze({
    bus,
    name: name === undefined ? undefined : checkName(name),
    from: checkStartPosition(from),
    reuseBuffers: reuseBuffers === true,
    coalesce: coalesce === true,
  });
}

/** The cursor file's rule for a name (wire/cursor-file.ts); a name that is no string never reaches it. */
function checkName(name: unknown): string {
  if (typeof name !== 'string') throw invalidOption('name', 'must be a string', JSON.stringify(name) ?? String(name));
  return checkConsumerName(name);
}

/**
 * Reads a bus. A Node Readable of Buffers, one per bus chunk, and an async
 * iterable of the same chunks.
 *
 * The two differ in when a chunk counts as delivered, which matters in
 * back-pressure mode (a delivered chunk is removed from the bus):
 * - `for await (const chunk of consumer)`: when the loop asks for the next
 *   chunk, i.e. after the loop body has handled this one.
 * - piping or 'data' events: when the chunk leaves the stream's buffer,
 *   which holds at most one chunk (highWaterMark 0).
 */
export class Consumer extends Readable {
  readonly #options: ResolvedConsumerOptions;
  #opening: Promise<{ bus: Bus; source: ChunkSource }> | undefined;
  #style: 'stream' | 'iterator' | undefined;
  #position: ConsumerPosition | undefined;
  readonly #stats = { chunks: 0, bytes: 0 };
  /** Chunks are views of a reused buffer the caller did not ask for: hand out copies. */
  #copyOut = false;
  /** close() was called: the aborted waits it causes end iteration quietly. */
  #closing = false;

  constructor(options: ConsumerOptions) {
    const resolved = resolveConsumerOptions(options);
    super({ objectMode: true, highWaterMark: 0 });
    this.#options = resolved;
    destroyOnAbort(this, resolved.bus.signal);
  }

  /** Chunks and bytes emitted so far. A 'chunk' event carries the same after each chunk. */
  get stats(): TransferStats {
    return { ...this.#stats };
  }

  /**
   * Multicast: the next segment this consumer will emit, the newest segment
   * on the bus, and the lag between them, as of the last segment handled.
   * Undefined in the other modes and before the consumer has started.
   */
  get position(): ConsumerPosition | undefined {
    return this.#position;
  }

  /** The path of the bus file. */
  get filename(): string {
    return this.#options.bus.filename;
  }

  /** Stops consuming and releases the bus; a chunk being handled stays on the bus. */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.closed) return;
    await new Promise<void>((resolve) => {
      this.once('close', () => resolve());
      this.destroy();
    });
  }

  override _read(): void {
    if (this.#style === 'iterator' || this.destroyed) return;
    this.#style = 'stream';
    this.#open()
      .then(({ source }) => source.next())
      .then((result) => this.push(result.done ? null : this.#count(result.value)), (error: Error) => this.destroy(error));
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const opening = this.#opening;
    if (!opening) return callback(error);
    opening
      .then(async ({ bus, source }) => {
        // Abort first: the source may be waiting, and return() queues behind a pending next().
        const closing = bus.close();
        await source.return(undefined).catch(() => {});
        await closing;
      })
      .then(() => callback(error), () => callback(error));
  }

  override [Symbol.asyncIterator](): AsyncIterableIterator<Buffer> {
    if (this.#style === 'stream') return super[Symbol.asyncIterator]();
    this.#style = 'iterator';
    return this.#iterate();
  }

  async *#iterate(): AsyncGenerator<Buffer, void, undefined> {
    if (this.#options.bus.signal?.aborted) throw abortError();
    if (this.destroyed) {
      if (this.errored) throw this.errored;
      return;
    }
    // Errors reach the loop through the iterator; an 'error' event nobody
    // listens to would crash the process instead.
    this.on('error', () => {});
    try {
      const { source } = await this.#open();
      for (;;) {
        const result = await source.next();
        if (result.done) break;
        yield this.#count(this.#copyOut ? Buffer.from(result.value) : result.value);
      }
    } catch (error) {
      if (this.#closing && error instanceof FilebusError && error.code === 'ERR_FILEBUS_ABORTED') return;
      throw this.errored ?? error;
    } finally {
      await this.close();
    }
  }

  #count(chunk: Buffer): Buffer {
    this.#stats.chunks += 1;
    this.#stats.bytes += chunk.length;
    this.emit('chunk', this.#stats);
    return chunk;
  }

  #open(): Promise<{ bus: Bus; source: ChunkSource }> {
    this.#opening ??= (async () => {
      const bus = await openBus(this.#options.bus, 'consumer');
      this.emit('bus', bus.info);
      try {
        const source = await openChunkSource(bus, {
          name: this.#options.name,
          from: this.#options.from,
          onPosition: (position) => { this.#position = position; },
          ...this.#readOptions(),
        });
        return { bus, source };
      } catch (error) {
        await bus.close();
        throw error;
      }
    })();
    return this.#opening;
  }

  /** Buffer reuse and coalescing: only where the caller asked and the chunk cannot outlive the next read. */
  #readOptions(): { readBuffer?: ReadBuffer; coalesceBytes?: number } {
    if (this.#style !== 'iterator') return {};
    const reuse = this.#options.reuseBuffers;
    const coalesce = this.#options.coalesce && this.#options.name === undefined;
    if (!coalesce) return reuse ? { readBuffer: reusedReadBuffer() } : {};
    // Runs are read into one reused buffer; without reuseBuffers each is copied out at its own size.
    this.#copyOut = !reuse;
    return { readBuffer: reusedReadBuffer(), coalesceBytes: COALESCE_BYTES };
  }
}
