import fs from 'node:fs';
import { TakerTurn } from '../lock/taker-turn.js';
import { sleep } from '../util/abortable.js';
import type { ChangeWatcher } from '../watch/change-watcher.js';
import { closeQuietly, fileExists, readChunk, removeQuietly } from '../wire/chunk-file.js';
import { keepAsSpare, removeDelivered, removeSpare } from '../wire/spare-chunk.js';
import { abandonTaken, adoptAbandoned, finishTaken, giveBackTaken, takeChunk, takenNames, type TakenChunk } from '../wire/taken-chunk.js';
import { ioError } from '../errors.js';
import type { ReadBuffer } from '../util/read-buffer.js';
import type { ViewedChunk } from './bus-view.js';
import type { ChunkSource } from './contracts.js';
import type { Bus } from './open-bus.js';

/**
 * Back-pressure: each chunk goes to one consumer, which removes it from the
 * bus only once it is delivered. An empty FILE is the end-of-stream marker.
 */
export function backPressureChunks(bus: Bus, into: ReadBuffer): ChunkSource {
  // A taken chunk's holder is known by its flock: where flock is not to be
  // trusted, the reference's order it is (BusView.takesByRename).
  return bus.view.takesByRename ? takenChunks(bus, into) : heldChunks(bus, into);
}

/** The longest a consumer waiting for its turn goes between asks (unless --sleep-interval is longer). */
const MAX_TURN_WAIT_MS = 1000;

/** Chunks in a row a consumer takes with the turn before it lets others that asked have it. */
const YIELD_EVERY = 32;

/** How often an idle consumer looks for chunks abandoned by dead consumers. */
const ADOPT_EVERY_MS = 1000;

/**
 * Local file systems: take FILE by renaming it (wire/taken-chunk.ts), so
 * the producer goes on while the chunk is written out. Chunks that dead
 * consumers took and never delivered come first.
 */
async function* takenChunks(bus: Bus, into: ReadBuffer): ChunkSource {
  const { paths, options, signal, lock } = bus;
  // Only the idle consumer whose turn it is watches FILE (lock/taker-turn.ts).
  const turn = new TakerTurn(paths.taker, options.fileMode);
  let watcher: ChangeWatcher | undefined;
  const stopWatching = async (): Promise<void> => {
    const closing = watcher;
    watcher = undefined;
    await closing?.close();
  };
  const stalled = new StallCheck(paths.file);
  const maxTurnWait = Math.max(options.sleepIntervalMs, MAX_TURN_WAIT_MS);
  let turnWait = options.sleepIntervalMs;
  let streak = 0;
  let yieldUntil = 0;
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
        if (Date.now() < yieldUntil || !turn.tryTake()) {
          streak = 0;
          // Not our turn: publishes must not wake us. But a turn whose holder
          // leaves FILE untaken through a whole wait is held by a consumer
          // stopped (SIGSTOP) or stuck: then we stand in for it, watching FILE
          // too, until the turn is ours. One stopped reader stops nobody else.
          if (!stalled.standingIn) {
            await stopWatching();
            if (!stalled.check()) {
              // Each wake-up of a Node process costs about half a millisecond
              // of CPU here whatever it does: 200 waiting consumers asking ten
              // times a second took 1.5 of the machine's 2 cores. Ask less
              // often the longer the turn stays taken.
              await sleep(turnWait, signal);
              turnWait = Math.min(turnWait * 2, maxTurnWait);
              continue;
            }
          }
        } else {
          stalled.reset();
        }
        if (Date.now() >= yieldUntil) turnWait = options.sleepIntervalMs;
        watcher ??= await bus.watchFile();
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
        // Taken: the next idle consumer may take the next chunk while this one is written out.
        if (turn.held && ++streak >= YIELD_EVERY && turn.othersWaiting()) {
          // Let the others have the turn for a while: back of the line.
          streak = 0;
          yieldUntil = Date.now() + maxTurnWait;
          turnWait = maxTurnWait;
        }
        turn.release();
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
    turn.close();
    await stopWatching();
    // Stopped before delivering: back at FILE when it is free, else left for adoption.
    const undelivered = [...(current ? [current] : []), ...backlog];
    if (undelivered.length > 0) await giveBack(bus, undelivered);
    // The end marker may go to a reference consumer, which knows nothing of
    // spares: a consumer of ours that stops removes the spare, or one would
    // outlive the stream (the next publish then makes a new file).
    removeSpare(paths);
  }
}

/**
 * Tells a consumer waiting for its turn that the consumer holding the turn
 * is not taking FILE: the same FILE (inode and ctime) seen at two checks a
 * --sleep-interval apart. A holder that runs takes FILE within an event.
 */
class StallCheck {
  readonly #file: string;
  #last: string | undefined;
  #until = 0;

  constructor(file: string) {
    this.#file = file;
  }

  /**
   * For a while after a stall is seen: long enough to keep a stream moving
   * at nearly full speed past a stopped holder, short enough that consumers
   * which stood in for one that has since come back stop watching FILE.
   */
  get standingIn(): boolean {
    return Date.now() < this.#until;
  }

  /** True (and standing in from now on) when FILE has not changed since the previous check. */
  check(): boolean {
    const now = fileVersion(this.#file);
    const stalled = now !== undefined && now === this.#last;
    this.#last = now;
    if (stalled) this.#until = Date.now() + STAND_IN_MS;
    return stalled;
  }

  /** The turn is ours: no more standing in. */
  reset(): void {
    this.#until = 0;
    this.#last = undefined;
  }
}

const STAND_IN_MS = 1000;

function fileVersion(file: string): string | undefined {
  try {
    const st = fs.statSync(file, { bigint: true });
    return `${st.dev}:${st.ino}:${st.ctimeNs}`;
  } catch {
    return undefined;
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
    chunks.forEach((chunk, i) => { if (locked && i === 0) giveBackTaken(bus.paths, chunk); else abandonTaken(chunk); });
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
      if (!bus.view.hasChunk()) {
        await watcher.changedSince(seen, options.sleepIntervalMs, signal);
        continue;
      }
      await lock.acquire(signal);
      let taken = false;
      let claimed: ViewedChunk | undefined;
      try {
        const opened = (claimed = bus.view.claimChunk());
        if (opened) {
          let data: Buffer | undefined;
          try {
            data = readChunk(paths.file, opened.fd, opened.size, into);
          } finally {
            closeQuietly(opened.fd);
          }
          if (data !== undefined) {
            taken = true;
            if (data.length > 0) yield data;
            if (data.length > 0 && bus.view.keepsSpare) keepAsSpare(paths, paths.file); else removeDelivered(paths.file);
            if (data.length === 0) return;
          }
        }
      } finally {
        // After FILE: a consumer that dies in between leaves only a temporary name, which producers sweep.
        claimed?.release();
        lock.release();
      }
      // Taken by another consumer, or gone under us (ESTALE): look again after a wait, not at once.
      if (!taken) await watcher.changedSince(seen, options.sleepIntervalMs, signal);
    }
  } finally {
    removeSpare(paths); // as in takenChunks
  }
}
