import fs from 'node:fs';
import { errnoCode, ioError } from '../errors.js';
import type { Liveness } from '../lock/liveness.js';
import type { BusView } from './bus-view.js';
import { listCursorFiles, scanCursors, type CursorState } from '../wire/cursor-file.js';

/**
 * A producer's view of the cursors in FILE.consumers/, kept between
 * retention passes so that a pass costs what changed, not one look at
 * every cursor: with many dead named consumers (which hold retention until
 * removed) the window stays full and every publish makes a pass.
 *
 * Why a cached view is safe (the caller holds the bus lock):
 * - A position only grows (its owner advances it; a named consumer that
 *   resumes starts where its cursor says). A cached position is a lower
 *   bound, so deleting below the cached minimum deletes nothing a cursor
 *   has not passed, as long as every cursor is in the view.
 * - Every cursor is in the view: consumers create (and `remove-consumer`
 *   removes) cursor files only under the lock, and each changes the
 *   directory's ctime. The view lists the directory again whenever that
 *   ctime differs from the one it saw when it last listed, or when that
 *   one was too recent to trust: timestamps are coarse (a clock tick of up
 *   to 10 ms), so a change made within the same tick as the listing could
 *   leave the ctime as it was. A ctime older than the listing by more than
 *   TICK_MARGIN_MS cannot be given again to a later change. A listing reads
 *   every cursor, so a name removed and made again (a named consumer
 *   removed, then started afresh at an earlier position) is read afresh.
 *   On a network file system the ctime is the server's clock, not this
 *   host's: the view lists on every pass there.
 * - Liveness only matters for whether the producer waits. Cursors thought
 *   live are looked at again (position and liveness) before the producer
 *   decides to wait, so a dead one never makes it wait, and a live one a
 *   window behind always does. A cursor thought dead that comes back to
 *   life (a named consumer resumed) is found by rounds that look at a few
 *   dead cursors every ROUND_EVERY_MS: until then the producer does not wait for it, and
 *   its segments are held for it all the same, as for any dead named
 *   consumer.
 */
const TICK_MARGIN_MS = 100;
/** Cursors thought dead looked at again per round, and how often a round comes. */
const DEAD_PER_ROUND = 16;
const ROUND_EVERY_MS = 50;

export class CursorView {
  readonly #dir: string;
  readonly #liveness: Liveness;
  /** Other hosts rewrite cursors behind this host's caches: no ctime shortcut, reads past the page cache. */
  readonly #remote: boolean;
  /** By file name. */
  #cursors = new Map<string, CursorState>();
  /** The directory's ctime when it was last listed, if it can be trusted to change with the next change. */
  #listedCtime: bigint | undefined;
  #deadRound: string[] = [];
  #lastRound = 0;

  constructor(dir: string, liveness: Liveness, view: Pick<BusView, 'remote'>) {
    this.#dir = dir;
    this.#liveness = liveness;
    this.#remote = view.remote;
  }

  /** Lists the directory if its set of cursors may have changed; reads new cursors and a few thought dead. */
  refresh(): void {
    const before = Date.now();
    const ctime = this.#remote ? undefined : this.#ctime();
    if (ctime === undefined || ctime !== this.#listedCtime) this.#list(ctime, before);
    this.#reviveRound();
  }

  /** Looks again at every cursor thought live: its position, and whether it still is. */
  rereadLive(): void {
    const live: string[] = [];
    for (const [name, state] of this.#cursors) if (state.live) live.push(name);
    this.#read(live);
  }

  /** The lowest position of every cursor, and of the live ones (Infinity: none). */
  minimums(): { all: number; live: number } {
    let all = Infinity;
    let live = Infinity;
    for (const cursor of this.#cursors.values()) {
      all = Math.min(all, cursor.position);
      if (cursor.live) live = Math.min(live, cursor.position);
    }
    return { all, live };
  }

  /**
   * Reads every cursor again: which of the names is a file made again
   * since the last listing cannot be told without a stat per name. This
   * happens when the set of cursors changed (a consumer joined or was
   * removed), and on the passes of the next TICK_MARGIN_MS, not per publish.
   */
  #list(ctime: bigint | undefined, before: number): void {
    const names = listCursorFiles(this.#dir);
    this.#cursors.clear();
    this.#deadRound = [];
    this.#read(names);
    // Trusted for the next pass only if no change after `before` can be given the same ctime.
    this.#listedCtime = ctime !== undefined && ctime < BigInt(before - TICK_MARGIN_MS) * 1_000_000n ? ctime : undefined;
  }

  #reviveRound(): void {
    const now = Date.now();
    if (now - this.#lastRound < ROUND_EVERY_MS) return;
    this.#lastRound = now;
    if (this.#deadRound.length === 0) {
      for (const [name, state] of this.#cursors) if (!state.live) this.#deadRound.push(name);
    }
    const batch = this.#deadRound.splice(0, DEAD_PER_ROUND).filter((name) => this.#cursors.get(name)?.live === false);
    if (batch.length > 0) this.#read(batch);
  }

  /** Reads these cursor files (removing gone anonymous ones, as scanCursors does) into the view. */
  #read(names: readonly string[]): void {
    if (names.length === 0) return;
    const states = scanCursors(this.#dir, this.#liveness, { sweep: true, direct: this.#remote, only: names });
    for (const name of names) this.#cursors.delete(name);
    for (const state of states) this.#cursors.set(state.name, state);
  }

  #ctime(): bigint | undefined {
    try {
      return fs.lstatSync(this.#dir, { bigint: true }).ctimeNs;
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw ioError('stat', this.#dir, error);
    }
  }
}
