import fs from 'node:fs';
import os from 'node:os';
import { fcntlSync } from 'fs-ext';
import { errnoCode, ioError } from '../errors.js';
import { writeAllAt } from './chunk-file.js';
import { tempPath, type BusPaths } from './layout.js';

/**
 * The spare: on a back-pressure bus, the file of a chunk already delivered,
 * kept at `.BASE.spare` so that the next publish writes into it instead of
 * into a new file.
 *
 * Why: on tmpfs most of what a large chunk costs is the kernel allocating
 * its pages when a producer writes a new file and freeing them when the
 * consumer unlinks it, more than writing and reading the same bytes into
 * pages that already exist (docs/performance.md, "What changed since the
 * first run").
 *
 * What keeps it safe:
 * - FILE itself is still only ever replaced whole by rename (protocol rule
 *   1): the spare is written under a producer's own temporary name, after
 *   rename(2) has taken it from `.BASE.spare`, so two producers never get
 *   the same file.
 * - A file still open anywhere is never rewritten: lossy consumers read
 *   without the lock and keep the descriptors of recent chunks open, so
 *   the producer first takes a write lease (F_SETLEASE), which the kernel
 *   grants only when no other descriptor of the file is open, and holds it
 *   while writing, so an open that slips in waits until the bytes are whole.
 * - Only a regular file of ours, with one link and the bus's file mode, is
 *   reused: anything else planted at the name is removed, never written.
 * - Reference programs never look at the name: a reference producer makes
 *   new files as always, and our consumer's spare then just replaces the
 *   previous one (costing what an unlink would).
 *
 * Network file systems keep unlinking: leases are local to one kernel.
 */

const F_SETSIG = 10;
const F_SETLEASE = 1024;
const F_WRLCK = 1;
const F_UNLCK = 2;
/**
 * A lease that is broken signals its holder, SIGIO by default, which would
 * kill the process: SIGURG's default action is to ignore it.
 */
const LEASE_SIGNAL = os.constants.signals.SIGURG;

const leasesWork = process.platform === 'linux';

/**
 * Consumer, after delivering a chunk: keeps its file (`from`: FILE, or a
 * taken chunk's name) as the spare, replacing an older spare. Where spares
 * cannot be used (no leases), or the rename fails, it is removed instead
 * (removeDelivered).
 */
export function keepAsSpare(paths: BusPaths, from: string): void {
  if (leasesWork) {
    try {
      fs.renameSync(from, paths.spare);
      return;
    } catch { /* fall back to removing it */ }
  }
  removeDelivered(from);
}

/** Consumer, after delivering a chunk it keeps no spare of: removes its file (`from`). */
export function removeDelivered(from: string): void {
  try {
    fs.unlinkSync(from);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw ioError('remove', from, error);
  }
}

export function removeSpare(paths: BusPaths): void {
  try { fs.unlinkSync(paths.spare); } catch { /* none, or another process took it */ }
}

/**
 * Producer: writes `buffers` into the spare, moved first to `temp` (a
 * fresh temporary name of ours). False when there was no spare fit to
 * reuse; `temp` does not exist then, and the caller writes a new file.
 * `mode` is the permission bits a new file of this producer gets.
 */
export function writeIntoSpare(paths: BusPaths, temp: string, buffers: readonly Buffer[], mode: number): boolean {
  if (!leasesWork) return false;
  try {
    fs.renameSync(paths.spare, temp);
  } catch {
    return false;
  }
  let fd: number | undefined;
  let oldSize: number;
  try {
    // O_NONBLOCK: a FIFO planted at the name fails here instead of waiting for a reader.
    fd = fs.openSync(temp, fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    const st = fs.fstatSync(fd);
    oldSize = st.size;
    if (!st.isFile() || st.nlink !== 1 || st.uid !== process.geteuid?.() || (st.mode & 0o7777) !== mode) throw new Error('not reusable');
    fcntlSync(fd, F_SETSIG, LEASE_SIGNAL);
    fcntlSync(fd, F_SETLEASE, F_WRLCK);
  } catch {
    // Open elsewhere (EAGAIN from the lease), not ours, or not a file: it goes.
    if (fd !== undefined) fs.closeSync(fd);
    try { fs.unlinkSync(temp); } catch { clearName(paths, temp); }
    return false;
  }
  try {
    const size = writeAllAt(fd, buffers);
    if (oldSize > size) fs.ftruncateSync(fd, size);
  } catch (error) {
    fs.closeSync(fd);
    try { fs.unlinkSync(temp); } catch { /* gone already */ }
    throw ioError('write', temp, error);
  }
  try { fcntlSync(fd, F_SETLEASE, F_UNLCK); } catch { /* closing drops it too */ }
  fs.closeSync(fd);
  return true;
}

/**
 * A directory someone planted at the spare's name, now at our temporary
 * name, which the caller writes next: removed if empty, else moved aside
 * (back to the spare's name, or, when a consumer has put a spare there
 * meanwhile, to a fresh temporary name).
 */
function clearName(paths: BusPaths, temp: string): void {
  try { fs.rmdirSync(temp); return; } catch { /* not empty, or not a directory */ }
  try { fs.renameSync(temp, paths.spare); return; } catch { /* a new spare is there */ }
  try { fs.renameSync(temp, tempPath(paths)); } catch { /* gone already */ }
}
