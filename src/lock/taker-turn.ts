import fs from 'node:fs';
import { flockSync } from 'fs-ext';
import type { FileMode } from '../util/permissions.js';
import { directoryTrust, distrust, parentOf } from '../util/trust.js';
import { openLockFile, tryFlock } from './flock.js';

/**
 * Whose turn it is to take FILE among the idle back-pressure consumers of
 * one host: the one holding an exclusive flock on `.BASE.taker`.
 *
 * Why: every idle consumer used to watch FILE, so each publish woke all of
 * them, and all of them then queued on the bus lock in front of the
 * producer's next publish: a stream slowed down with every consumer added
 * (docs/performance.md, "What changed since the first run"). Now only the
 * consumer whose turn it is watches FILE; the others try for the turn once
 * per --sleep-interval and are not woken by publishes at all.
 *
 * The turn is only ever about speed, never about who may take a chunk:
 * taking still happens under the bus lock (wire/taken-chunk.ts), so two
 * consumers that both believe it is their turn (a bus directory deleted and
 * made again, a stand-in for a stopped holder) are as safe as today's
 * consumers all racing. Only non-blocking attempts are made: a blocking
 * flock would sit in libuv's small thread pool for as long as another
 * consumer is idle, and could not be taken back when the consumer closes.
 *
 * The file is made by the first consumer that asks and removed by the last
 * to leave; one a killed consumer left behind is simply used.
 *
 * A `.BASE.taker` that cannot be opened, or that is not the bus user's
 * (util/trust.ts), is not used: every consumer then takes its own turn, as
 * before the file existed. Nothing is delivered from it and nothing waits
 * on it for good.
 */
/** A consumer refused the turn asks again within a second or so (back-pressure-source.ts); older stamps are stale. */
const WAITING_FRESH_MS = 2500;
/** The atime a refused consumer sets with its stamp, so that a file's creation (mtime now too) is no stamp. Nothing reads the file. */
const ASKED_ATIME = 1;

export class TakerTurn {
  readonly #path: string;
  readonly #mode: FileMode;
  #fd: number | undefined;
  #unusable = false;
  #held = false;

  constructor(path: string, mode: FileMode) {
    this.#path = path;
    this.#mode = mode;
  }

  /** True while this consumer holds the turn. */
  get held(): boolean {
    return this.#held;
  }

  /** Takes the turn if it is free (or cannot be had by anyone); never waits. */
  tryTake(): boolean {
    if (this.#held) return true;
    // The file is removed by the last consumer to leave (close), so the lock
    // just taken may be on a file no longer at the path: then the path's file it is.
    for (let attempt = 0; attempt < 3; attempt++) {
      const fd = this.#open();
      if (fd === undefined) return true;
      try {
        if (!tryFlock(fd, 'exclusive', this.#path)) {
          this.#announce(fd);
          return false;
        }
        if (this.#stillAtPath(fd)) return (this.#held = true);
      } catch {
        this.#unusable = true;
        this.#closeFd();
        return true;
      }
      this.#closeFd();
    }
    return true;
  }

  /** Gives the turn to the next idle consumer that asks. */
  release(): void {
    if (!this.#held) return;
    this.#held = false;
    // Closing drops the flock too, so an error here needs no handling.
    if (this.#fd !== undefined) {
      try { flockSync(this.#fd, 'un'); } catch { this.#closeFd(); }
    }
  }

  /**
   * Whether another consumer asked for the turn lately: each one that asks
   * and is refused stamps the file's times. A consumer that keeps up with
   * the producer would otherwise keep the turn, and every chunk, to itself
   * (a worker behind a pipe takes jobs as fast as the pipe buffers them).
   */
  othersWaiting(): boolean {
    if (this.#fd === undefined) return false;
    try {
      const st = fs.fstatSync(this.#fd);
      return st.atimeMs === ASKED_ATIME * 1000 && st.mtimeMs > Date.now() - WAITING_FRESH_MS;
    } catch {
      return false;
    }
  }

  #announce(fd: number): void {
    const now = Date.now() / 1000;
    try { fs.futimesSync(fd, ASKED_ATIME, now); } catch { /* only a hint */ }
  }

  /**
   * Leaves for good. A consumer that can take the turn as it leaves removes
   * the file, so a bus nobody consumes from carries no trace of it; one still
   * waiting for its turn makes it again (tryTake).
   */
  close(): void {
    if (this.tryTake() && this.#held) {
      try { fs.unlinkSync(this.#path); } catch { /* gone already */ }
    }
    this.#held = false;
    this.#closeFd();
  }

  #stillAtPath(fd: number): boolean {
    try {
      const ours = fs.fstatSync(fd);
      const there = fs.lstatSync(this.#path);
      return ours.ino === there.ino && ours.dev === there.dev;
    } catch {
      return false;
    }
  }

  #open(): number | undefined {
    if (this.#unusable) return undefined;
    if (this.#fd !== undefined) return this.#fd;
    let fd: number;
    try {
      fd = openLockFile(this.#path, this.#mode);
    } catch {
      this.#unusable = true;
      return undefined;
    }
    try {
      if (distrust(fs.fstatSync(fd), 'file', directoryTrust(parentOf(this.#path))) !== undefined) throw new Error('untrusted');
    } catch {
      fs.closeSync(fd);
      this.#unusable = true;
      return undefined;
    }
    this.#fd = fd;
    return fd;
  }

  #closeFd(): void {
    if (this.#fd === undefined) return;
    try { fs.closeSync(this.#fd); } catch { /* already closed */ }
    this.#fd = undefined;
  }
}
