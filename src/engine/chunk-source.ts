import { backPressureChunks } from './back-pressure-source.js';
import type { ChunkSource, SourceOptions } from './contracts.js';
import { lossyChunks } from './lossy-source.js';
import { joinMulticast, multicastChunks } from './multicast-source.js';
import { guardMode } from './mode-guard.js';
import type { Bus } from './open-bus.js';
import { freshReadBuffer } from '../util/read-buffer.js';

/**
 * The consumer's side of the bus's mode (contracts.ts); back-pressure and
 * multicast consumers stop when a producer of another mode turns up
 * (mode-guard.ts).
 */
export async function openChunkSource(bus: Bus, options: SourceOptions): Promise<ChunkSource> {
  const into = options.readBuffer ?? freshReadBuffer;
  switch (bus.options.mode) {
    case 'lossy': return lossyChunks(bus, into);
    case 'back-pressure': return guardMode(bus, backPressureChunks(bus, into));
    case 'multicast': return guardMode(bus, multicastChunks(bus, await joinMulticast(bus, options), options.onPosition, into, options.coalesceBytes));
  }
}
