import { ioError, errnoCode } from '../errors.js';
import fs from 'node:fs';
import { closeQuietly, fileExists, openChunk, readChunk, removeQuietly, sameChunk, type ChunkIdentity } from '../wire/chunk-file.js';
import { claimChunk, listed } from '../wire/server-view.js';
import { joinMulticast, multicastChunks, type ConsumerPosition, type MulticastJoin } from './multicast-source.js';
import type { Bus } from './open-bus.js';

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
}

export async function openChunkSource(bus: Bus, options: SourceOptions): Promise<ChunkSource> {
  switch (bus.options.mode) {
    case 'lossy': return lossyChunks(bus);
    case 'back-pressure': return backPressureChunks(bus);
    case 'multicast': return multicastChunks(bus, await joinMulticast(bus, options), options.onPosition);
  }
}

/**
 * Lossy: emit FILE whenever it is a different file than the one emitted
 * last. The last chunk's descriptor stays open: while it is open its inode
 * number cannot be reused, so (dev, ino) identifies chunks without the
 * false "already seen" a recycled inode would cause. No lock is taken:
 * FILE is only ever replaced by rename, so an open descriptor always holds
 * one whole chunk.
 *
 * On a network file system the directory is listed before each look: the
 * listing refreshes this host's cached entry for FILE, which would
 * otherwise keep showing an old chunk for up to its cache timeout. A chunk
 * another host replaced between the open and the read (ESTALE) is skipped.
 */
async function* lossyChunks(bus: Bus): ChunkSource {
  const { paths, options, signal } = bus;
  const watcher = await bus.watchFile();
  let held: { fd: number; id: ChunkIdentity } | undefined;
  try {
    for (;;) {
      const seen = watcher.generation;
      const opened = bus.network && !listed(paths.dir, paths.base) ? undefined : openChunk(paths.file);
      if (opened && !sameChunk(held?.id, opened.id)) {
        const data = readChunk(paths.file, opened.fd, opened.size);
        if (data === undefined) {
          closeQuietly(opened.fd);
          await watcher.changedSince(seen, options.sleepIntervalMs, signal);
          continue;
        }
        if (held) closeQuietly(held.fd);
        held = opened;
        // An empty FILE is a back-pressure end marker seen by an eavesdropper: no data.
        if (data.length > 0) yield data;
        continue;
      }
      if (opened) closeQuietly(opened.fd);
      await watcher.changedSince(seen, options.sleepIntervalMs, signal);
    }
  } finally {
    if (held) closeQuietly(held.fd);
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
async function* backPressureChunks(bus: Bus): ChunkSource {
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
          data = readChunk(paths.file, opened.fd, opened.size);
        } finally {
          closeQuietly(opened.fd);
        }
        if (data !== undefined) {
          taken = true;
          if (data.length > 0) yield data;
          unlinkChunk(paths.file);
          if (data.length === 0) return;
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

function unlinkChunk(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw ioError('remove', file, error);
  }
}
