import { ProducerRegistration } from '../wire/producer-registry.js';
import type { Bus } from './open-bus.js';
import type { Publisher } from './contracts.js';

/** The record in FILE.producers/ is rewritten at most this often, never once per chunk. */
const RECORD_INTERVAL_MS = 1000;

/**
 * Registers the producer in FILE.producers/ (every mode), so `status` can
 * tell the mode, whether a producer runs, and how many chunks it published
 * and when. Multicast needs the registration to decide who writes the end
 * marker, so there it is required; in the reference's modes it is only
 * information, and a producer that cannot register (FILE.producers/ not
 * writable, or not a directory) runs unregistered like a reference producer.
 */
export function registerProducer(bus: Bus): ProducerRegistration | undefined {
  const multicast = bus.options.mode === 'multicast';
  try {
    return ProducerRegistration.create(bus.paths, bus.options.fileMode, bus.options.mode, { removeDirWhenLast: !multicast, liveness: bus.liveness });
  } catch (error) {
    if (multicast) throw error;
    return undefined;
  }
}

/**
 * Counts what the publisher it wraps publishes and keeps the registration's
 * record current: per chunk only counters move; a timer writes the record
 * at most once per RECORD_INTERVAL_MS, and once more after the last chunk.
 */
export class RegisteredPublisher implements Publisher {
  readonly #inner: Publisher;
  readonly #registration: ProducerRegistration | undefined;
  #chunks = 0;
  #bytes = 0;
  #last: number | null = null;
  #written = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(inner: Publisher, registration: ProducerRegistration | undefined) {
    this.#inner = inner;
    this.#registration = registration;
  }

  get batch(): number {
    return this.#inner.batch;
  }

  holdBeforeCut(): Promise<void> | undefined {
    return this.#inner.holdBeforeCut?.();
  }

  async publishAll(chunks: readonly (readonly Buffer[])[]): Promise<void> {
    await this.#inner.publishAll(chunks);
    this.#chunks += chunks.length;
    for (const buffers of chunks) for (const buffer of buffers) this.#bytes += buffer.length;
    this.#last = Date.now();
    if (this.#timer === undefined && this.#registration !== undefined) {
      this.#timer = setTimeout(() => this.#flush(), Math.max(0, this.#written + RECORD_INTERVAL_MS - this.#last));
      // The record must never keep a finished process alive.
      this.#timer.unref();
    }
  }

  finish(): Promise<void> {
    return this.#inner.finish();
  }

  discard(): void {
    this.#inner.discard();
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    try {
      this.#inner.close();
    } finally {
      this.#registration?.close();
    }
  }

  #flush(): void {
    this.#timer = undefined;
    this.#written = Date.now();
    this.#registration?.update({ chunks: this.#chunks, bytes: this.#bytes, last: this.#last });
  }
}
