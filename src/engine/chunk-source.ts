import { closeQuietly, fileExists, openChunk, readChunk, removeQuietly } from '../wire/chunk-file.js';
import { claimChunk, listed } from '../wire/server-view.js';
import { keepAsSpare, removeSpare } from '../wire/spare-chunk.js';
import { joinMulticast, multicastChunks, type ConsumerPosition, type MulticastJoin } from './multicast-source.js';
import { lossyChunks } from './lossy-source.js';
import type { Bus } from './open-bus.js';
import { freshReadBuffer, type ReadBuffer } from '../util/read-buffer.js';

/**
 * The chunks a consumer receives, in order. A chunk counts as delivered when
 * the caller asks for the next one (or returns): that is when a
 * back-pressure chunk is removed from the bus, so a consumer that dies while
 * handling a chunk leaves it for another (at-least-once).
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

/**
 * Back-pressure: take FILE under the lock, hand it over, and only then
 * unlink it, which is what lets the producer go on. An empty FILE is the
 * end-of-stream marker: consume it and end.
 *
 * On a network file system FILE is read through a link made under the
 * lock (claimChunk): this host's cache may still show a chunk another
 * host's consumer has taken, and reading that would deliver it twice.
 */
async function* backPressureChunks(bus: Bus, into: ReadBuffer): ChunkSource {
  const { paths, options, signal, lock } = bus;
  const watcher = await bus.watchFile();
  for (;;) {
    const seen = watcher.generation;
    if (!(bus.network ? listed(paths.dir, paths.base) : fileExists(paths.file))) {
      await watcher.changedSince(seen, options.sleepIntervalMs, signal);
      continue;
    }
    await lock.acquire(signal);
    let taken = false;
    let claim: string | undefined;
    try {
      const opened = bus.network ? claimChunk(paths) : openChunk(paths.file);
      if (opened) {
        if ('claim' in opened) claim = opened.claim;
        let data: Buffer | undefined;
        try {
          data = readChunk(paths.file, opened.fd, opened.size, into);
        } finally {
          closeQuietly(opened.fd);
        }
        if (data !== undefined) {
          taken = true;
          if (data.length > 0) yield data;
          // Delivered: its file stays as the spare the next publish writes into.
          keepAsSpare(paths, data.length > 0 && !bus.network);
          if (data.length === 0) {
            removeSpare(paths);
            return;
          }
        }
      }
    } finally {
      // After FILE: a consumer that dies in between leaves only a temporary name, which producers sweep.
      if (claim !== undefined) removeQuietly(claim);
      lock.release();
    }
    // Taken by another consumer, or gone under us (ESTALE): look again after a wait, not at once.
    if (!taken) await watcher.changedSince(seen, options.sleepIntervalMs, signal);
  }
}
