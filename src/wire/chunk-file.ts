import fs from 'node:fs';
import { FilebusError, errnoCode, ioError, isStale } from '../errors.js';
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

/** Writes buffers to a new file at tempPath, which must not exist yet. */
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
 */
export function openChunk(file: string): { fd: number; id: ChunkIdentity; size: number } | undefined {
  let fd: number;
  try {
    // O_NONBLOCK: were FILE a named pipe, a plain open would wait for a writer forever.
    fd = fs.openSync(file, O_RDONLY | O_NONBLOCK);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || isStale(error)) return undefined;
    throw ioError('open', file, error);
  }
  try {
    // Identity comes from the descriptor, not a stat of the name, so it
    // always describes the bytes we are about to read.
    const st = fs.fstatSync(fd, { bigint: true });
    if (!st.isFile()) throw new FilebusError('ERR_FILEBUS_BAD_PATH', `${file} is not a regular file`, { path: file });
    return { fd, id: { dev: st.dev, ino: st.ino }, size: Number(st.size) };
  } catch (error) {
    closeQuietly(fd);
    if (error instanceof FilebusError) throw error;
    if (isGone(error)) return undefined;
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

export function fileExists(file: string): boolean {
  try {
    // No exception for the common answer: a back-pressure producer asks twice per chunk, and is told no.
    return fs.lstatSync(file, { throwIfNoEntry: false }) !== undefined;
  } catch (error) {
    throw ioError('stat', file, error);
  }
}

export function removeQuietly(file: string): void {
  try { fs.unlinkSync(file); } catch { /* already gone, or never ours */ }
}
