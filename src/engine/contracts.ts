/**
 * What the engines promise the edges (streams/), whichever mode a bus is
 * in: a Publisher for producers, a ChunkSource for consumers. One
 * implementation per mode and direction sits beside this file
 * (lossy-publisher.ts, back-pressure-source.ts, ...); create-publisher.ts
 * and chunk-source.ts pick one.
 */
import type { StartPosition } from '../options.js';
import type { ReadBuffer } from '../util/read-buffer.js';

/** Publishes chunks onto a bus in one mode. */
export interface Publisher {
  /** How many full chunks one call to publishAll may take. */
  readonly batch: number;
  /**
   * A wait to finish before the next short chunk (less than a block) is
   * cut, or undefined (no wait): input goes on queueing meanwhile, so what
   * arrives in it goes out in one chunk. Lossy mode uses it once, after its
   * first chunk (LossyPublisher).
   */
  holdBeforeCut?(): Promise<void> | undefined;
  /** Publishes these chunks (each made of buffers) in order; resolves once the last is visible at FILE. */
  publishAll(chunks: readonly (readonly Buffer[])[]): Promise<void>;
  /** Marks the end of the stream, where the mode has a marker. */
  finish(): Promise<void>;
  /** Removes a temporary file left by an interrupted publish. */
  discard(): void;
  /** Lets go of what the publisher holds on the bus (after finish, or when aborted). */
  close(): void;
}

/**
 * The chunks a consumer receives, in order. A chunk counts as delivered when
 * the caller asks for the next one: that is when a back-pressure chunk is
 * removed from the bus, so a consumer that dies or stops while handling a
 * chunk leaves it for another (at-least-once).
 */
export type ChunkSource = AsyncGenerator<Buffer, void, undefined>;

export interface SourceOptions extends MulticastJoin {
  /** Called whenever a multicast consumer's position or the bus's head moves. */
  readonly onPosition: (position: ConsumerPosition) => void;
  /** Where chunks are read into; by default each gets a buffer of its own. */
  readonly readBuffer?: ReadBuffer;
  /** Multicast: merge segments already waiting into chunks of up to this many bytes (0: never). */
  readonly coalesceBytes?: number;
}

/** Where a multicast consumer joins: as whom, and from which segment. */
export interface MulticastJoin {
  readonly name: string | undefined;
  readonly from: StartPosition | undefined;
}

/** Where a consumer is and how far behind the newest segment. */
export interface ConsumerPosition {
  /** Sequence number of the next segment this consumer will emit. */
  readonly position: number;
  /** Sequence number of the newest segment on the bus (0 if none). */
  readonly head: number;
  /** Segments published but not yet emitted by this consumer. */
  readonly lagChunks: number;
}
