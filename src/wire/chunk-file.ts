import fs from 'node:fs';
import { FilebusError, errnoCode, ioError, isStale } from '../errors.js';
import { childPath, HOST, tempOwner, type BusPaths } from './layout.js';
import { listDirectory } from '../util/list-directory.js';
import { directoryTrust, distrust, ownerTrusted, parentOf, untrusted } from '../util/trust.js';
import { createFile, type FileMode } from '../util/permissions.js';
import { freshReadBuffer, type ReadBuffer } from '../util/read-buffer.js';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_NONBLOCK } = fs.constants;

/**
 * O_EXCL|O_NOFOLLOW: a name someone planted (a symlink, a file) is never
 * opened for writing; the write fails instead of landing elsewhere.
 */
const CREATE_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;

/** Identity of one published chunk: FILE is only ever replaced, never rewritten. */
export interface ChunkIdentity {
  readonly dev: bigint;
  readonly ino: bigint;
}

export function sameChunk(a: ChunkIdentity | undefined, b: ChunkIdentity): boolean {
  return a !== undefined && a.dev === b.dev && a.ino === b.ino;
}

/** Writes buffers to a new file at tempPath (a fresh name: layout.ts), which must not exist yet. */
export function writeNewFile(tempPath: string, buffers: readonly Buffer[], mode: FileMode): void {
  let fd: number;
  try {
    fd = createFile(tempPath, CREATE_FLAGS, mode);
  } catch (error) {
    throw ioError('create', tempPath, error);
  }
  try {
    writeAllAt(fd, buffers);
    fs.closeSync(fd);
  } catch (error) {
    try { fs.closeSync(fd); } catch { /* already closed */ }
    removeQuietly(tempPath);
    throw ioError('write', tempPath, error);
  }
}

/** Writes all of `buffers` from the start of the file; returns how many bytes that was. */
export function writeAllAt(fd: number, buffers: readonly Buffer[]): number {
  let pending = buffers.filter((b) => b.length > 0);
  let position = 0;
  while (pending.length > 0) {
    let written = fs.writevSync(fd, pending, position);
    position += written;
    const rest: Buffer[] = [];
    for (const buffer of pending) {
      if (written >= buffer.length) { written -= buffer.length; continue; }
      rest.push(written > 0 ? buffer.subarray(written) : buffer);
      written = 0;
    }
    pending = rest;
  }
  return position;
}

/**
 * Opens FILE for reading, or returns undefined when there is none. ESTALE
 * counts as none: on a network file system it means FILE resolved to a
 * chunk another host has replaced since, and the caller looks again later.
 * A symlink at FILE, or a FILE of a user the bus does not trust
 * (util/trust.ts), is refused with ERR_FILEBUS_UNTRUSTED: another user may
 * have planted it, to make us print a file only we can read, or to feed us
 * chunks.
 */
export function openChunk(file: string): OpenedChunk | undefined {
  const opened = openEntry(file);
  if (typeof opened !== 'string') return opened;
  if (opened === 'gone') return undefined;
  // Ours, but a directory, FIFO or device: a mistake, not an attack.
  if (opened === NOT_REGULAR) throw new FilebusError('ERR_FILEBUS_BAD_PATH', `${file} is not a regular file`, { path: file });
  throw untrusted(file, `bus file ${file} ${opened}`);
}

const NOT_REGULAR = 'is not a regular file of ours';

export type OpenedChunk = { fd: number; id: ChunkIdentity; size: number };

/**
 * A ring entry (recent-chunks.ts), opened like FILE; 'gone' when it no
 * longer exists, and 'untrusted' when it is not a regular file of a user
 * the bus trusts: one name among many that someone else may have planted,
 * skipped without a word (it must neither stop the consumer nor be emitted).
 */
export function openRingEntry(file: string): OpenedChunk | 'gone' | 'untrusted' {
  const opened = openEntry(file);
  return typeof opened !== 'string' ? opened : opened === 'gone' ? 'gone' : 'untrusted';
}

/** An open chunk, 'gone', or why the name is not to be trusted. */
function openEntry(file: string): OpenedChunk | string {
  let fd: number;
  try {
    // O_NONBLOCK: were FILE a named pipe, a plain open would wait for a writer forever.
    // O_NOFOLLOW: never read through a symlink someone planted.
    fd = fs.openSync(file, O_RDONLY | O_NONBLOCK | O_NOFOLLOW);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || isStale(error)) return 'gone';
    if (errnoCode(error) === 'ELOOP') return 'is a symbolic link';
    throw ioError('open', file, error);
  }
  try {
    // Identity and owner come from the descriptor, not a stat of the name,
    // so they always describe the bytes we are about to read; the trust of
    // the directory is looked up once per process, so this costs no syscall.
    const st = fs.fstatSync(fd, { bigint: true });
    const trust = directoryTrust(parentOf(file));
    const why = distrust(st, 'file', trust);
    if (why !== undefined) {
      closeQuietly(fd);
      return ownerTrusted(st.uid, trust) ? NOT_REGULAR : why;
    }
    return { fd, id: { dev: st.dev, ino: st.ino }, size: Number(st.size) };
  } catch (error) {
    closeQuietly(fd);
    if (isGone(error)) return 'gone';
    throw ioError('read', file, error);
  }
}

/**
 * A file that vanished under an open descriptor: ESTALE, or ENOENT from
 * network file system clients that open lazily (GlusterFS's open-behind
 * opens on the server at the first read, by which time another host may
 * have removed the file).
 */
export function isGone(error: unknown): boolean {
  return isStale(error) || errnoCode(error) === 'ENOENT';
}

/**
 * Reads a whole chunk from an open descriptor (the caller closes it).
 * Undefined when the file is gone (isGone): another host removed or
 * replaced it before its bytes could be read, so there is no chunk to
 * give, only a reason to look again. Also undefined when the file ends
 * before `size` bytes: chunks are never written in place, so a short read
 * is a client that lost the file under us, never a chunk (taking it for
 * one could emit a torn chunk, or an empty one, which back-pressure reads
 * as the end of the stream). `shortIsGone: false` returns the short bytes
 * instead, for callers that check them (segments have a checksum).
 */
export function readChunk(
  file: string, fd: number, size: number, into: ReadBuffer = freshReadBuffer, options: { shortIsGone?: boolean } = {},
): Buffer | undefined {
  try {
    const buffer = into.take(size);
    let filled = 0;
    while (filled < size) {
      const n = fs.readSync(fd, buffer, filled, size - filled, filled);
      if (n === 0) break;
      filled += n;
    }
    if (filled === size) return buffer;
    return options.shortIsGone === false ? buffer.subarray(0, filled) : undefined;
  } catch (error) {
    if (isGone(error)) return undefined;
    throw ioError('read', file, error);
  }
}

export function closeQuietly(fd: number): void {
  try { fs.closeSync(fd); } catch { /* nothing left to release */ }
}

/**
 * Whether FILE exists. One that another user put there (in a sticky
 * directory they may create it whenever the bus is between chunks) is
 * refused with ERR_FILEBUS_UNTRUSTED: a back-pressure producer would
 * otherwise wait for it to go, without a word, for ever. Same lstat, no
 * extra system call.
 */
export function fileExists(file: string): boolean {
  let st: fs.Stats | undefined;
  try {
    // No exception for the common answer: a back-pressure producer asks twice per chunk, and is told no.
    st = fs.lstatSync(file, { throwIfNoEntry: false });
  } catch (error) {
    throw ioError('stat', file, error);
  }
  if (st === undefined) return false;
  if (!ownerTrusted(st.uid, directoryTrust(parentOf(file)))) throw untrusted(file, `bus file ${file} ${distrust(st, 'file', directoryTrust(parentOf(file)))}`);
  return true;
}

export function removeQuietly(file: string): void {
  try { fs.unlinkSync(file); } catch { /* already gone, or never ours */ }
}

/**
 * Removes temporary files (layout.ts, tempPath) left by processes of this
 * host that are no longer running (killed mid-publish). Files of live
 * processes, and of other hosts, are never touched: their pids mean
 * nothing here. Best effort: a directory that cannot be listed is swept
 * another time.
 */
export function sweepStaleTemps(paths: BusPaths): number {
  let names: string[];
  try {
    names = listDirectory(paths.dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const owner = tempOwner(paths, name);
    if (!owner || owner.host !== HOST || owner.pid === process.pid || isRunning(owner.pid)) continue;
    try {
      fs.unlinkSync(childPath(paths.dir, name));
      removed += 1;
    } catch { /* raced with another sweeper */ }
  }
  return removed;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCode(error) === 'EPERM';
  }
}
