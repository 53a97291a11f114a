import { backPressureChunks } from './back-pressure-source.js';
import type { ChunkSource, SourceOptions } from './contracts.js';
import { lossyChunks } from './lossy-source.js';
import { joinMulticast, multicastChunks } from './multicast-source.js';
import type { Bus } from './open-bus.js';
import { freshReadBuffer } from '../util/read-buffer.js';

/** The consumer's side of the bus's mode (contracts.ts). */
export async function openChunkSource(bus: Bus, options: SourceOptions): Promise<ChunkSource> {
  switch (bus.options.mode) {
    case 'lossy': return lossyChunks(bus, options.readBuffer ?? freshReadBuffer);
    case 'back-pressure': return backPressureChunks(bus, options.readBuffer ?? freshReadBuffer);
    case 'multicast': return multicastChunks(bus, await joinMulticast(bus, options), options.onPosition, options.readBuffer ?? freshReadBuffer, options.coalesceBytes);
  }
}
