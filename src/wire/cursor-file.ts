import fs from 'node:fs';
import path from 'node:path';
import { FilebusError, errnoCode, ioError } from '../errors.js';
import type { Holding, Liveness } from '../lock/liveness.js';
import { decodeRecord, encodeRecord, readRecord } from './checked-record.js';
import { CONSUMER_NAME_RULE, cursorFileName, cursorIdOf, formatSeq, isAnonymous, isConsumerName, parseSeq, SEQ_DIGITS } from './layout.js';
import { createPrivateFile, type FileMode } from '../util/permissions.js';
import { listDirectory } from '../util/list-directory.js';
import { directoryTrust, ownerTrusted, requireTrusted } from '../util/trust.js';

/**
 * A consumer's cursor: `FILE.consumers/<id>.cursor` (layout.ts), holding
 * the sequence number of the next segment it will emit, as one 30-byte
 * checked record (checked-record.ts) `<20 decimal digits> <CRC-32 of those
 * digits, 8 hex>\n`, rewritten in place.
 *
 * Liveness: on flock buses the consumer holds an exclusive flock on the
 * open cursor file for as long as it runs; whoever can take the lock knows
 * the consumer is gone, and the kernel releases it however the consumer
 * dies. On mkdir buses the consumer keeps the file's mtime fresh instead
 * (see lock/liveness.ts).
 *
 * Anonymous consumers' cursors are removed when they are gone; named ones
 * stay until `remove-consumer`.
 */
const RECORD_LENGTH = SEQ_DIGITS + 1 + 8 + 1;

export function checkConsumerName(name: string): string {
  if (!isConsumerName(name)) {
    throw new FilebusError('ERR_FILEBUS_INVALID_OPTION', `consumer name must be ${CONSUMER_NAME_RULE}, got ${JSON.stringify(name)}`);
  }
  return name;
}

/** The cursor record for `position`: always RECORD_LENGTH bytes, so a rewrite covers the whole of the last one. */
export function encodeCursorRecord(position: number): Buffer {
  return encodeRecord(formatSeq(position));
}

/** The position a cursor record holds; undefined for anything but exactly one whole record. */
export function decodeCursorRecord(data: Buffer): number | undefined {
  if (data.length !== RECORD_LENGTH) return undefined;
  const payload = decodeRecord(data);
  return payload === undefined ? undefined : parseSeq(payload);
}

/** O_DIRECT reads must ask for a multiple of the block size (FUSE refuses 31 bytes, takes 512 or 4096). */
const DIRECT_READ_LENGTH = 4096;

/**
 * The position in an open cursor. `direct`: `fd` was opened with O_DIRECT,
 * whose reads must be a whole block. A record that is still torn after a
 * few reads is damage: ERR_FILEBUS_CORRUPT.
 */
function readPosition(fd: number, file: string, options: { direct: boolean }): number {
  // One byte more than a record, so a longer file is not taken for one.
  const position = readRecord(fd, options.direct ? DIRECT_READ_LENGTH : RECORD_LENGTH + 1, decodeCursorRecord);
  if (position !== undefined) return position;
  throw new FilebusError('ERR_FILEBUS_CORRUPT', `cursor file ${file} is corrupt: not a valid position record`, { path: file });
}

/** A cursor owned (and locked) by this process. */
export class OwnedCursor {
  readonly id: string;
  readonly file: string;
  #fd: number;
  #position: number;
  #holding: Holding | undefined;

  private constructor(id: string, file: string, fd: number, position: number, holding: Holding | undefined) {
    this.id = id;
    this.file = file;
    this.#fd = fd;
    this.#position = position;
    this.#holding = holding;
  }

  get position(): number {
    return this.#position;
  }

  /**
   * Creates a new cursor; fails if one with this id exists. The file is
   * written and held under `temp` (a temporary name of the bus, swept like
   * the others if its creator dies) before it gets its name by `link(2)`,
   * so a cursor is never seen empty or unheld, however its consumer dies:
   * an empty cursor is damage, never a join cut short.
   */
  static create(dir: string, id: string, position: number, mode: FileMode, liveness: Liveness, temp: string): OwnedCursor {
    const file = path.join(dir, cursorFileName(id));
    let fd: number;
    try {
      fd = createPrivateFile(temp, fs.constants.O_RDWR | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, mode);
    } catch (error) {
      throw ioError('create cursor', file, error);
    }
    const cursor = new OwnedCursor(id, file, fd, position, undefined);
    try {
      cursor.#write(position);
      cursor.#holding = liveness.hold(fd, file, { created: true });
      fs.linkSync(temp, file);
    } catch (error) {
      cursor.#holding?.release();
      fs.closeSync(fd);
      throw error instanceof FilebusError ? error : ioError('create cursor', file, error);
    } finally {
      fs.rmSync(temp, { force: true });
    }
    return cursor;
  }

  /** Opens an existing named cursor, or returns undefined if there is none. */
  static open(dir: string, id: string, liveness: Liveness): OwnedCursor | undefined {
    const opened = openCursorOf(dir, id, fs.constants.O_RDWR);
    if (!opened) return undefined;
    const { file, fd } = opened;
    try {
      const st = fs.fstatSync(fd);
      if (!ownerTrusted(st.uid, directoryTrust(dir))) requireTrusted(file, st, 'file', directoryTrust(dir), 'cursor');
      if (!st.isFile()) throw new FilebusError('ERR_FILEBUS_CORRUPT', `cursor ${file} is not a regular file`, { path: file });
      const position = readPosition(fd, file, { direct: false });
      const holding = liveness.hold(fd, file);
      if (!holding) {
        throw new FilebusError('ERR_FILEBUS_CONSUMER', `consumer ${id} is already running (its cursor ${file} is held)`, { path: file });
      }
      return new OwnedCursor(id, file, fd, position, holding);
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
  }

  /** Records that every segment before `position` has been delivered. */
  advance(position: number): void {
    if (position === this.#position) return;
    this.#write(position);
    this.#position = position;
  }

  /**
   * Whether this cursor's file is still the one at its name: not when the
   * bus was deleted (and maybe made again) or the cursor removed under it.
   */
  isInPlace(): boolean {
    try {
      const at = fs.lstatSync(this.file, { bigint: true });
      const own = fs.fstatSync(this.#fd, { bigint: true });
      return at.dev === own.dev && at.ino === own.ino;
    } catch (error) {
      if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') return false;
      throw ioError('stat cursor', this.file, error);
    }
  }

  /** Lets go of the cursor; an anonymous cursor is removed, a named one kept. */
  close(): void {
    if (this.#fd < 0) return;
    if (isAnonymous(this.id)) {
      try { fs.unlinkSync(this.file); } catch { /* a producer may have swept it */ }
    }
    this.#holding?.release();
    try { fs.closeSync(this.#fd); } catch { /* already closed */ }
    this.#fd = -1;
  }

  #write(position: number): void {
    const record = encodeCursorRecord(position);
    try {
      fs.writeSync(this.#fd, record, 0, record.length, 0);
    } catch (error) {
      throw ioError('write cursor', this.file, error);
    }
  }
}

/** What a producer or `status` learns about one cursor without owning it. */
export interface CursorState {
  readonly id: string;
  /** The cursor's file name in its directory. */
  readonly name: string;
  readonly file: string;
  readonly position: number;
  readonly live: boolean;
}

/** How scanCursors reads. */
export interface CursorScanOptions {
  /**
   * Remove the cursors of anonymous consumers that are gone. Only under
   * the bus lock, so that no consumer is between creating its cursor and
   * holding it.
   */
  readonly sweep?: boolean;
  /**
   * Read with O_DIRECT, past this host's page cache. Cursors are rewritten
   * in place by their owners, and a network file system client may keep
   * serving the old bytes of a file another host rewrote without changing
   * its size (GlusterFS mounted without attribute caching but without
   * direct-io-mode: for ever). Where O_DIRECT is refused, a plain read.
   */
  readonly direct?: boolean;
  /** Read these file names of `dir` only (those gone are left out), not the whole directory. */
  readonly only?: readonly string[];
}

/** Reads every cursor in `dir` (or those `only` names). */
export function scanCursors(dir: string, liveness: Liveness, options: CursorScanOptions = {}): CursorState[] {
  const names = options.only ?? listCursorFiles(dir);
  const states: CursorState[] = [];
  for (const fileName of names) {
    const id = cursorIdOf(fileName);
    if (id === undefined) continue;
    const file = path.join(dir, fileName);
    const opened = openToScan(file, { direct: options.direct === true });
    if (opened === undefined) continue;
    const { fd, direct } = opened;
    try {
      const st = fs.fstatSync(fd);
      // Another user's file here (FILE.consumers/ writable by every user) is
      // no consumer of ours: it holds nothing back and stops no one.
      if (!ownerTrusted(st.uid, directoryTrust(dir))) continue;
      if (!st.isFile()) {
        throw new FilebusError('ERR_FILEBUS_CORRUPT', `cursor ${file} is not a regular file`, { path: file });
      }
      const live = liveness.isHeld(fd, file);
      if (!live && isAnonymous(id) && options.sweep === true) {
        fs.unlinkSync(file);
        continue;
      }
      // A dead consumer's empty cursor: it died registering, before it had a position.
      if (!live && fs.fstatSync(fd).size === 0) continue;
      states.push({ id, name: fileName, file, position: readDirectOrPlain(fd, file, { direct }), live });
    } catch (error) {
      if (error instanceof FilebusError) throw error;
      throw ioError('read cursor', file, error);
    } finally {
      fs.closeSync(fd);
    }
  }
  return states;
}

/**
 * A cursor opened to read, and whether with O_DIRECT (asked for, and not
 * refused with EINVAL); undefined when it is gone.
 */
function openToScan(file: string, options: { direct: boolean }): { fd: number; direct: boolean } | undefined {
  if (options.direct) {
    try {
      return { fd: openForReading(file, { direct: true }), direct: true };
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      if (errnoCode(error) !== 'EINVAL') throw ioError('open cursor', file, error);
    }
  }
  try {
    return { fd: openForReading(file, { direct: false }), direct: false };
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw ioError('open cursor', file, error);
  }
}

/** The names of the cursor files in `dir` (none if it is gone). */
export function listCursorFiles(dir: string): string[] {
  return listDirectory(dir).filter((name) => cursorIdOf(name) !== undefined);
}

/** O_NONBLOCK: a named pipe planted as a cursor must not hang whoever looks. */
function openForReading(file: string, options: { direct: boolean }): number {
  return fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK | (options.direct ? fs.constants.O_DIRECT : 0));
}

/** The record through an O_DIRECT descriptor, or through a plain one where direct reads are refused (EINVAL). */
function readDirectOrPlain(fd: number, file: string, options: { direct: boolean }): number {
  if (!options.direct) return readPosition(fd, file, { direct: false });
  try {
    return readPosition(fd, file, { direct: true });
  } catch (error) {
    if (errnoCode(error) !== 'EINVAL') throw error;
  }
  const plain = openForReading(file, { direct: false });
  try {
    return readPosition(plain, file, { direct: false });
  } finally {
    fs.closeSync(plain);
  }
}

/** Removes a named consumer's cursor, refusing while that consumer runs. */
export function removeCursor(dir: string, id: string, liveness: Liveness): boolean {
  const opened = openCursorOf(dir, id, fs.constants.O_RDONLY);
  if (!opened) return false;
  const { file, fd } = opened;
  try {
    if (liveness.isHeld(fd, file)) {
      throw new FilebusError('ERR_FILEBUS_CONSUMER', `consumer ${id} is running; stop it before removing it`, { path: file });
    }
    fs.unlinkSync(file);
    return true;
  } finally {
    fs.closeSync(fd);
  }
}

/** The cursor of consumer `id` in `dir`, opened with `flags` (never through a symlink); undefined when there is none. */
function openCursorOf(dir: string, id: string, flags: number): { file: string; fd: number } | undefined {
  const file = path.join(dir, cursorFileName(id));
  try {
    return { file, fd: fs.openSync(file, flags | fs.constants.O_NOFOLLOW) };
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw ioError('open cursor', file, error);
  }
}
