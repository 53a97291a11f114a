import fs from 'node:fs';
import path from 'node:path';
import { errnoCode, ioError } from '../errors.js';
import { listDirectory } from '../util/list-directory.js';
import { directoryTrust, distrust, requireTrusted } from '../util/trust.js';
import { tryFlock } from '../lock/flock.js';
import { closeQuietly } from './chunk-file.js';
import { isTakenName, takenPath, type BusPaths } from './layout.js';
import { keepAsSpare, removeDelivered } from './spare-chunk.js';

/**
 * Taken chunks: how a back-pressure consumer on a local file system takes
 * FILE. Under the bus lock it renames FILE to a name of its own,
 * `.BASE.HOST.PID.N.HEX.taken` (layout.ts, takenPath), opens it and holds
 * an exclusive flock on it; then it lets the lock go and writes the chunk
 * out.
 *
 * Why: FILE is free as soon as the chunk is taken, so the producer
 * publishes the next chunk while this one is being written out. With the
 * reference's order (write out, then unlink FILE) every chunk waited for
 * two wake-ups in a row (docs/performance.md, "What changed since the
 * first run", has what taking by rename gained).
 *
 * What keeps delivery at-least-once:
 * - A taken chunk is removed (or kept as the spare) only once written out.
 * - Its flock says its holder is alive: the kernel drops it when the
 *   holder dies. A taken chunk whose flock can be had is abandoned, and the
 *   next consumer adopts it (renames it to a name of its own, under the bus
 *   lock) and delivers it before anything else: at start, when idle, and
 *   before it ends on the end-of-stream marker.
 * - Taking, locking and adopting all happen under the bus lock, so nobody
 *   sees a taken chunk between its rename and its flock.
 * - A consumer stopped (signal, closed output) before delivering gives the
 *   chunk back at FILE when FILE is free, where any consumer (the
 *   reference's too) finds it (giveBackTaken); otherwise it abandons it
 *   to adoption (abandonTaken).
 *
 * Network file systems keep the reference's order (server-view.ts):
 * flock does not reach across hosts there.
 */
export interface TakenChunk {
  readonly path: string;
  /** Open read-only, holding the exclusive flock that marks the chunk as held. */
  readonly fd: number;
  readonly size: number;
}

const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

/** Under the bus lock: FILE, taken. Undefined when there is no FILE. */
export function takeChunk(paths: BusPaths): TakenChunk | undefined {
  const name = takenPath(paths);
  try {
    fs.renameSync(paths.file, name);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw ioError('take', paths.file, error);
  }
  let fd: number;
  try {
    fd = fs.openSync(name, OPEN_FLAGS);
  } catch (error) {
    giveBackJustTaken(paths, name);
    throw ioError('open', paths.file, error);
  }
  try {
    const st = fs.fstatSync(fd);
    // A FILE another user put there while the bus was between chunks is not a chunk.
    requireTrusted(paths.file, st, 'file', directoryTrust(paths.dir), 'bus file');
    if (!tryFlock(fd, 'exclusive', name)) throw ioError('lock', name, new Error('held by another process'));
    return { path: name, fd, size: st.size };
  } catch (error) {
    closeQuietly(fd);
    giveBackJustTaken(paths, name);
    throw error;
  }
}

/**
 * takeChunk failed after its rename: FILE goes back where it was. Still
 * under the bus lock, so no producer can have published a new FILE
 * meanwhile, and rename is safe.
 */
function giveBackJustTaken(paths: BusPaths, name: string): void {
  try { fs.renameSync(name, paths.file); } catch { /* left for adoption */ }
}

/** The names of the chunks taken on this bus, other than `ours`: a listing, no lock. */
export function takenNames(paths: BusPaths, ours?: TakenChunk): string[] {
  const own = ours && path.basename(ours.path);
  return listDirectory(paths.dir).filter((name) => name !== own && isTakenName(paths, name));
}

/**
 * Under the bus lock: the taken chunks whose holders are gone, made ours,
 * oldest first; and how many data chunks live consumers (other than `ours`)
 * hold. End markers they hold are not counted: each ends its own holder,
 * and a consumer holding a marker that waited for another's would wait for
 * a consumer waiting for it in turn (several producers each end with a
 * marker). A taken file's size is final: it was renamed from a whole FILE.
 */
export function adoptAbandoned(paths: BusPaths, ours?: TakenChunk): { adopted: TakenChunk[]; held: number } {
  const names = takenNames(paths, ours);
  const found: Array<TakenChunk & { takenAt: number }> = [];
  let held = 0;
  for (const name of names) {
    const file = path.join(paths.dir, name);
    let fd: number;
    try {
      fd = fs.openSync(file, OPEN_FLAGS);
    } catch {
      continue; // delivered meanwhile
    }
    let st: fs.Stats;
    try {
      st = fs.fstatSync(fd);
      // Planted by another user: never delivered, never waited for.
      if (distrust(st, 'file', directoryTrust(paths.dir)) !== undefined) {
        closeQuietly(fd);
        continue;
      }
      if (!tryFlock(fd, 'exclusive', file)) {
        closeQuietly(fd);
        if (st.size > 0) held += 1;
        continue;
      }
    } catch (error) {
      closeQuietly(fd);
      throw error;
    }
    const mine = takenPath(paths);
    try {
      fs.renameSync(file, mine);
    } catch {
      closeQuietly(fd);
      continue;
    }
    // ctime: when it was taken (the rename), so adopted chunks keep the order they were taken in.
    found.push({ path: mine, fd, size: st.size, takenAt: st.ctimeMs });
  }
  found.sort((a, b) => a.takenAt - b.takenAt);
  return { adopted: found.map(({ path: p, fd, size }) => ({ path: p, fd, size })), held };
}

/** Delivered: its file becomes the spare the next publish writes into (spare-chunk.ts). */
export function finishTaken(paths: BusPaths, taken: TakenChunk): void {
  // Renamed before the descriptor is closed: once the flock goes, the name must no longer be a taken chunk.
  try {
    // An end marker's empty file has no pages to reuse.
    if (taken.size > 0) keepAsSpare(paths, taken.path);
    else removeDelivered(taken.path);
  } finally {
    closeQuietly(taken.fd);
  }
}

/**
 * Not delivered, and the caller holds the bus lock: back at FILE if FILE
 * is free; otherwise abandoned (abandonTaken). True when it is back at
 * FILE.
 */
export function giveBackTaken(paths: BusPaths, taken: TakenChunk): boolean {
  let back = false;
  try {
    // link, not rename: rename would replace a FILE published meanwhile.
    fs.linkSync(taken.path, paths.file);
    back = true;
    fs.unlinkSync(taken.path);
  } catch { /* FILE is taken by a newer chunk: adoption it is */ }
  closeQuietly(taken.fd);
  return back;
}

/**
 * Not delivered, without the bus lock: left where it is, and with its
 * flock gone (closing the descriptor drops it) the next consumer adopts it
 * (adoptAbandoned).
 */
export function abandonTaken(taken: TakenChunk): void {
  closeQuietly(taken.fd);
}
