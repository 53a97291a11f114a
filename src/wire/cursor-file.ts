import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { FilebusError, errnoCode, ioError } from '../errors.js';
import type { Holding, Liveness } from '../lock/liveness.js';
import { HOST } from './paths.js';
import { createPrivateFile, type FileMode } from '../util/permissions.js';
import { directoryTrust, ownerTrusted, requireTrusted } from '../util/trust.js';
import { SEQ_DIGITS } from './segments.js';

/**
 * A consumer's cursor: `FILE.consumers/<id>.cursor`, holding the sequence
 * number of the next segment it will emit, as one 30-byte record
 * `<20 decimal digits> <CRC-32 of those digits, 8 hex>\n`, rewritten in place.
 * The checksum lets a reader tell a record torn by a concurrent rewrite from
 * a real one.
 *
 * Liveness: on flock buses the consumer holds an exclusive flock on the
 * open cursor file for as long as it runs; whoever can take the lock knows
 * the consumer is gone, and the kernel releases it however the consumer
 * dies. On mkdir buses the consumer keeps the file's mtime fresh instead
 * (see lock/liveness.ts).
 *
 * Named consumers use their name as id; anonymous ones an id starting with
 * `~`, which no name can, and their cursor is removed when they are gone.
 */
const SUFFIX = '.cursor';
const RECORD_LENGTH = SEQ_DIGITS + 1 + 8 + 1;
const NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$/;

export function checkConsumerName(name: string): string {
  if (!NAME.test(name)) {
    throw new FilebusError('ERR_FILEBUS_INVALID_OPTION',
      `consumer name must be 1 to 100 letters, digits, '.', '_' or '-', not starting with '.' or '-', got ${JSON.stringify(name)}`);
  }
  return name;
}

export function anonymousId(): string {
  return `~${HOST}.${process.pid}.${randomBytes(4).toString('hex')}`;
}

export function cursorFileName(id: string): string {
  return `${id}${SUFFIX}`;
}

/** The consumer id of a cursor file name, or undefined for other files. */
export function cursorIdOf(fileName: string): string | undefined {
  return fileName.endsWith(SUFFIX) && !fileName.startsWith('.') ? fileName.slice(0, -SUFFIX.length) : undefined;
}

export function isAnonymous(id: string): boolean {
  return id.startsWith('~');
}

function encode(position: number): Buffer {
  const digits = String(position).padStart(SEQ_DIGITS, '0');
  const sum = (crc32(digits) >>> 0).toString(16).padStart(8, '0');
  return Buffer.from(`${digits} ${sum}\n`);
}

function decode(record: Buffer): number | undefined {
  if (record.length !== RECORD_LENGTH) return undefined;
  const text = record.toString('latin1');
  const match = /^(\d{20}) ([0-9a-f]{8})\n$/.exec(text);
  if (!match) return undefined;
  if ((crc32(match[1]!) >>> 0) !== parseInt(match[2]!, 16)) return undefined;
  const value = Number(match[1]);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** O_DIRECT reads must ask for a multiple of the block size (FUSE refuses 31 bytes, takes 512 or 4096). */
const DIRECT_READ_LENGTH = 4096;

function readRecord(fd: number, file: string, direct = false): number {
  // A read racing the owner's rewrite can see a torn record; the checksum
  // catches it and a second look finds the finished one.
  for (let attempt = 0; attempt < 3; attempt++) {
    const record = Buffer.alloc(direct ? DIRECT_READ_LENGTH : RECORD_LENGTH + 1);
    const n = fs.readSync(fd, record, 0, record.length, 0);
    const position = decode(record.subarray(0, n));
    if (position !== undefined) return position;
  }
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
      cursor.#holding = liveness.hold(fd, file, true);
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
    const file = path.join(dir, cursorFileName(id));
    let fd: number;
    try {
      fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw ioError('open cursor', file, error);
    }
    try {
      const st = fs.fstatSync(fd);
      if (!ownerTrusted(st.uid, directoryTrust(dir))) requireTrusted(file, st, 'file', directoryTrust(dir), 'cursor');
      if (!st.isFile()) throw new FilebusError('ERR_FILEBUS_CORRUPT', `cursor ${file} is not a regular file`, { path: file });
      const position = readRecord(fd, file);
      const holding = liveness.hold(fd, file, false);
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
    const record = encode(position);
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

/**
 * Reads every cursor in `dir`. Cursors of anonymous consumers that are gone
 * are removed when `sweep` is set (the caller holds the bus lock, so no
 * consumer is between creating its cursor and locking it).
 *
 * `direct`: read with O_DIRECT, past this host's page cache. Cursors are
 * rewritten in place by their owners, and a network file system client
 * may keep serving the old bytes of a file another host rewrote without
 * changing its size (GlusterFS mounted without attribute caching but
 * without direct-io-mode: for ever). Where O_DIRECT is refused, a plain read.
 */
export function scanCursors(dir: string, sweep: boolean, liveness: Liveness, direct = false, only?: readonly string[]): CursorState[] {
  // `only`: these file names, not the whole directory (those gone are left out).
  const names = only ?? listCursorFiles(dir);
  const states: CursorState[] = [];
  for (const fileName of names) {
    const id = cursorIdOf(fileName);
    if (id === undefined) continue;
    const file = path.join(dir, fileName);
    let fd: number;
    let directFd = direct;
    try {
      fd = openForReading(file, directFd);
    } catch (error) {
      if (!directFd || errnoCode(error) !== 'EINVAL') {
        if (errnoCode(error) === 'ENOENT') continue;
        throw ioError('open cursor', file, error);
      }
      directFd = false;
      try {
        fd = openForReading(file, false);
      } catch (again) {
        if (errnoCode(again) === 'ENOENT') continue;
        throw ioError('open cursor', file, again);
      }
    }
    try {
      const st = fs.fstatSync(fd);
      // Another user's file here (FILE.consumers/ writable by every user) is
      // no consumer of ours: it holds nothing back and stops no one.
      if (!ownerTrusted(st.uid, directoryTrust(dir))) continue;
      if (!st.isFile()) {
        throw new FilebusError('ERR_FILEBUS_CORRUPT', `cursor ${file} is not a regular file`, { path: file });
      }
      const live = liveness.isHeld(fd, file);
      if (!live && isAnonymous(id) && sweep) {
        fs.unlinkSync(file);
        continue;
      }
      // A dead consumer's empty cursor: it died registering, before it had a position.
      if (!live && fs.fstatSync(fd).size === 0) continue;
      states.push({ id, name: fileName, file, position: readDirectOrPlain(fd, file, directFd), live });
    } catch (error) {
      if (error instanceof FilebusError) throw error;
      throw ioError('read cursor', file, error);
    } finally {
      fs.closeSync(fd);
    }
  }
  return states;
}

/** The names of the cursor files in `dir` (none if it is gone). */
export function listCursorFiles(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return [];
    throw ioError('list', dir, error);
  }
  return names.filter((name) => cursorIdOf(name) !== undefined);
}

/** O_NONBLOCK: a named pipe planted as a cursor must not hang whoever looks. */
function openForReading(file: string, direct: boolean): number {
  return fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK | (direct ? fs.constants.O_DIRECT : 0));
}

/** The record through an O_DIRECT descriptor, or through a plain one where direct reads are refused (EINVAL). */
function readDirectOrPlain(fd: number, file: string, direct: boolean): number {
  if (!direct) return readRecord(fd, file);
  try {
    return readRecord(fd, file, true);
  } catch (error) {
    if (errnoCode(error) !== 'EINVAL') throw error;
  }
  const plain = openForReading(file, false);
  try {
    return readRecord(plain, file);
  } finally {
    fs.closeSync(plain);
  }
}

/** Removes a named consumer's cursor, refusing while that consumer runs. */
export function removeCursor(dir: string, id: string, liveness: Liveness): boolean {
  const file = path.join(dir, cursorFileName(id));
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return false;
    throw ioError('open cursor', file, error);
  }
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
