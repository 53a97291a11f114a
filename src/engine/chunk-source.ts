import { backPressureChunks } from './back-pressure-source.js';
import { joinMulticast, multicastChunks, type ConsumerPosition, type MulticastJoin } from './multicast-source.js';
import { lossyChunks } from './lossy-source.js';
import type { Bus } from './open-bus.js';
import { freshReadBuffer, type ReadBuffer } from '../util/read-buffer.js';

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

export async function openChunkSource(bus: Bus, options: SourceOptions): Promise<ChunkSource> {
  switch (bus.options.mode) {
    case 'lossy': return lossyChunks(bus, options.readBuffer ?? freshReadBuffer);
    case 'back-pressure': return backPressureChunks(bus, options.readBuffer ?? freshReadBuffer);
    case 'multicast': return multicastChunks(bus, await joinMulticast(bus, options), options.onPosition, options.readBuffer ?? freshReadBuffer, options.coalesceBytes);
  }
}
