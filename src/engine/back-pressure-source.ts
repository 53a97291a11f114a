import { sleep } from '../util/abortable.js';
import { closeQuietly, fileExists, openChunk, readChunk, removeQuietly } from '../wire/chunk-file.js';
import { claimChunk, listed } from '../wire/server-view.js';
import { keepAsSpare, removeSpare } from '../wire/spare-chunk.js';
import { adoptAbandoned, finishTaken, returnTaken, takeChunk, takenNames, type TakenChunk } from '../wire/taken-chunk.js';
import { ioError } from '../errors.js';
import type { ReadBuffer } from '../util/read-buffer.js';
import type { ChunkSource } from './chunk-source.js';
import type { Bus } from './open-bus.js';

/**
 * Back-pressure: each chunk goes to one consumer, which removes it from the
 * bus only once it is delivered. An empty FILE is the end-of-stream marker.
 */
export function backPressureChunks(bus: Bus, into: ReadBuffer): ChunkSource {
  // A taken chunk's holder is known by its flock: where flock is not to be
  // trusted (a network file system, or a bus set up with --lock mkdir for
  // one), the reference's order it is.
  return bus.network || bus.options.lock === 'mkdir' ? heldChunks(bus, into) : takenChunks(bus, into);
}

/** How often an idle consumer looks for chunks abandoned by dead consumers. */
const ADOPT_EVERY_MS = 1000;

/**
 * Local file systems: take FILE by renaming it (wire/taken-chunk.ts), so
 * the producer goes on while the chunk is written out. Chunks that dead
 * consumers took and never delivered come first.
 */
async function* takenChunks(bus: Bus, into: ReadBuffer): ChunkSource {
  const { paths, options, signal, lock } = bus;
  const watcher = await bus.watchFile();
  const backlog: TakenChunk[] = [];
  let current: TakenChunk | undefined;
  let lastAdopt = 0;
  const adopt = async (ours?: TakenChunk): Promise<number> => {
    lastAdopt = Date.now();
    // Most of the time there is nothing taken: then not even the lock is needed.
    if (takenNames(paths, ours).length === 0) return 0;
    await lock.acquire(signal);
    try {
      const { adopted, held } = adoptAbandoned(paths, ours);
      backlog.push(...adopted);
      return held;
    } finally {
      lock.release();
    }
  };
  try {
    await adopt();
    for (;;) {
      current = backlog.shift();
      if (!current) {
        const seen = watcher.generation;
        if (!fileExists(paths.file)) {
          await watcher.changedSince(seen, options.sleepIntervalMs, signal);
          if (watcher.generation === seen && Date.now() - lastAdopt >= ADOPT_EVERY_MS) await adopt();
          continue;
        }
        await lock.acquire(signal);
        try {
          current = takeChunk(paths);
        } finally {
          lock.release();
        }
        if (!current) continue; // another consumer was first
      }
      const data = readChunk(current.path, current.fd, current.size, into);
      if (data === undefined) throw ioError('read', current.path, new Error('chunk shorter than its size'));
      if (data.length > 0) {
        yield data;
        finishTaken(paths, current);
        current = undefined;
        continue;
      }
      // The end marker. Data chunks other consumers still hold are waited
      // for, and those of consumers that died are delivered first: nothing
      // taken is left behind when the stream is over. End markers others
      // hold are not waited for (taken-chunk.ts, adoptAbandoned).
      for (;;) {
        const held = await adopt(current);
        // Only data waits in front of the marker. A consumer can hold several
        // markers (one taken, others adopted from dead consumers): it ends on
        // this one and gives the others back as it leaves (finally, below),
        // one to each consumer, instead of turning them over for ever.
        if (backlog.some((chunk) => chunk.size > 0)) break;
        if (held === 0) {
          removeQuietly(current.path);
          closeQuietly(current.fd);
          current = undefined;
          return;
        }
        await sleep(options.sleepIntervalMs, signal);
      }
      // Deliver the adopted chunks, then meet the end marker again.
      backlog.push(current);
      current = undefined;
    }
  } finally {
    // Stopped before delivering: back at FILE when it is free, else left for adoption.
    const undelivered = [...(current ? [current] : []), ...backlog];
    if (undelivered.length > 0) await giveBack(bus, undelivered);
    // The end marker may go to a reference consumer, which knows nothing of
    // spares: a consumer of ours that stops removes the spare, or one would
    // outlive the stream (the next publish then makes a new file).
    removeSpare(paths);
  }
}

async function giveBack(bus: Bus, chunks: readonly TakenChunk[]): Promise<void> {
  let locked = false;
  try {
    // The caller's signal may be what stopped us: a short wait of our own.
    await bus.lock.acquire(AbortSignal.timeout(GIVE_BACK_WAIT_MS));
    locked = true;
  } catch { /* left for adoption */ }
  try {
    // Only the oldest can go back to FILE; the rest wait for adoption in order.
    chunks.forEach((chunk, i) => returnTaken(bus.paths, chunk, locked && i === 0));
  } finally {
    if (locked) bus.lock.release();
  }
}

const GIVE_BACK_WAIT_MS = 500;

/**
 * The reference's order: FILE is read under the lock, written out, and
 * only then removed, the lock held throughout. On a network file system it
 * is read through a link made under the lock (claimChunk): this host's
 * cache may still show a chunk another host's consumer has taken, and
 * reading that would deliver it twice.
 */
async function* heldChunks(bus: Bus, into: ReadBuffer): ChunkSource {
  const { paths, options, signal, lock } = bus;
  const watcher = await bus.watchFile();
  try {
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
            keepAsSpare(paths, paths.file, data.length > 0 && !bus.network);
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
  } finally {
    removeSpare(paths); // as in takenChunks
  }
}
