import fs from 'node:fs';
import { crc32 } from 'node:zlib';
import { FilebusError, errnoCode, ioError, isStale } from '../errors.js';
import { closeQuietly, isGone, readChunk } from './chunk-file.js';
import { childPath, consumersDir, END_MARKER_CRC, parseSegmentName, segmentsDir, type BusPaths, type SegmentRef } from './layout.js';
import { listDirectory } from '../util/list-directory.js';
import { createDirectory, type FileMode } from '../util/permissions.js';
import { checkBusDirectory, directoryTrust, requireTrusted } from '../util/trust.js';
import { freshReadBuffer, type ReadBuffer } from '../util/read-buffer.js';

/**
 * Multicast segments: chunk N of the stream is the file
 * `FILE.segments/<N as 20 decimal digits>.<CRC-32 as 8 hex digits>`
 * (layout.ts, segmentName), holding the chunk's raw bytes and nothing
 * else. Fixed-width names sort in stream order, so `cat FILE.segments/*`
 * reassembles a retained stream.
 */

/** CRC-32 (IEEE 802.3, zlib's) of a chunk made of several buffers. */
export function checksum(buffers: readonly Buffer[]): number {
  let crc = 0;
  for (const buffer of buffers) crc = crc32(buffer, crc);
  return crc >>> 0;
}

/** The segments present, oldest first. Anything else in the directory is ignored. */
export function listSegments(dir: string): SegmentRef[] {
  const refs: SegmentRef[] = [];
  for (const name of listDirectory(dir)) {
    const ref = parseSegmentName(name);
    if (ref) refs.push(ref);
  }
  return refs.sort((a, b) => a.seq - b.seq);
}

/** A segment opened for reading; its size comes from the descriptor. */
export interface OpenSegment {
  readonly file: string;
  readonly fd: number;
  readonly size: number;
}

/**
 * Opens a segment; undefined when it no longer exists (on a network file
 * system, ESTALE says the same: another host deleted it after this one
 * looked it up). The caller closes `fd`.
 */
export function openSegment(dir: string, ref: SegmentRef): OpenSegment | undefined {
  const file = childPath(dir, ref.name);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || isStale(error)) return undefined;
    throw ioError('read segment', file, error);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new FilebusError('ERR_FILEBUS_CORRUPT', `segment ${file} is not a regular file`, { path: file });
    // Only where FILE.segments/ is writable by every user can a stranger's segment be there.
    requireTrusted(file, st, 'file', directoryTrust(dir), 'segment');
    return { file, fd, size: st.size };
  } catch (error) {
    closeQuietly(fd);
    if (isGone(error)) return undefined;
    throw error;
  }
}

/**
 * Reads an open segment whole and checks it against the checksum in its
 * name. Undefined when it is gone (isGone) before its bytes could be read.
 */
export function readOpenSegment(segment: OpenSegment, ref: SegmentRef, into: ReadBuffer = freshReadBuffer): Buffer | undefined {
  // A short read is left to the checksum, which reports it as corrupt.
  const data = readChunk(segment.file, segment.fd, segment.size, into, { shortIsGone: false });
  if (data === undefined) return undefined;
  if ((crc32(data) >>> 0) !== ref.crc) {
    throw new FilebusError('ERR_FILEBUS_CORRUPT', `segment ${segment.file} is corrupt: its checksum does not match its name`, { path: segment.file });
  }
  return data;
}

/**
 * Reads a segment whole and checks it against the checksum in its name.
 * Returns undefined when it no longer exists.
 */
export function readSegment(dir: string, ref: SegmentRef, into: ReadBuffer = freshReadBuffer): Buffer | undefined {
  const segment = openSegment(dir, ref);
  if (!segment) return undefined;
  try {
    return readOpenSegment(segment, ref, into);
  } finally {
    closeQuietly(segment.fd);
  }
}

export function removeSegment(dir: string, ref: SegmentRef): void {
  try {
    fs.unlinkSync(childPath(dir, ref.name));
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw ioError('remove segment', childPath(dir, ref.name), error);
  }
}

/** Creates the segment and cursor directories if needed; a non-directory (or a symlink) there is an error. */
export function ensureMulticastDirs(paths: BusPaths, mode: FileMode): void {
  for (const dir of [segmentsDir(paths), consumersDir(paths)]) {
    try {
      createDirectory(dir, mode);
    } catch (error) {
      if (error instanceof FilebusError) throw error;
      if (errnoCode(error) !== 'EEXIST') throw ioError('create directory', dir, error);
    }
    checkBusDirectory(dir, fs.lstatSync(dir), paths);
  }
}

/** The size of a segment, or undefined if it is gone. */
export function segmentSize(dir: string, ref: SegmentRef): number | undefined {
  try {
    return fs.lstatSync(childPath(dir, ref.name)).size;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw ioError('stat segment', childPath(dir, ref.name), error);
  }
}

/**
 * End-of-stream markers are empty segments: only names with the checksum
 * of no bytes (END_MARKER_CRC) need a look at the size.
 */
export function isEndMarker(dir: string, ref: SegmentRef): boolean {
  return ref.crc === END_MARKER_CRC && segmentSize(dir, ref) === 0;
}
