import fs from 'node:fs';
import path from 'node:path';
import { FilebusError, errnoCode, ioError } from '../errors.js';
import { flockLiveness, type Holding, type Liveness } from '../lock/liveness.js';
import { BUS_MODES, type BusMode } from '../options.js';
import { decodeRecord, encodeRecord, readRecord } from './checked-record.js';
import { HOST, producersDir, registrationName, registrationTempName, registryEntryKind, type BusPaths } from './layout.js';
import { listDirectory } from '../util/list-directory.js';
import { createDirectory, createPrivateFile, type FileMode } from '../util/permissions.js';
import { checkBusDirectory, directoryTrust, distrust } from '../util/trust.js';

/**
 * Producers announce themselves in `FILE.producers/`: one file each,
 * `HOST.PID.HEX.producer` (layout.ts), held while the producer runs (below)
 * and holding one checked record (below). A multicast stream ends when its last
 * producer finishes, so a finishing producer that sees another live one
 * leaves the end marker to it; in every mode the records let `status` tell
 * the mode, whether a producer runs, and how far it got.
 *
 * A registration is written and held under a hidden temporary name and
 * only then renamed into place, so a `.producer` file nobody holds always
 * belongs to a producer that is gone. Held means an exclusive flock, or on
 * mkdir buses a fresh mtime (lock/liveness.ts).
 */
/** Creating a registration retries this often when a leaving producer removed the directory meanwhile. */
const CREATE_ATTEMPTS = 4;

/** What a producer's registration file says about it. */
export interface ProducerRecord {
  readonly mode: BusMode;
  readonly host: string;
  readonly pid: number;
  /** When the producer started, in milliseconds since the epoch. */
  readonly started: number;
  /** Chunks and bytes published so far, as of the last rewrite (at most about a second old). */
  readonly chunks: number;
  readonly bytes: number;
  /** When the last chunk was published (ms since the epoch), or null before the first. */
  readonly last: number | null;
}

/** The progress part of a record, which the producer rewrites. */
export type ProducerProgress = Pick<ProducerRecord, 'chunks' | 'bytes' | 'last'>;

/**
 * The record as JSON in a checked record (checked-record.ts). Rewritten in
 * place from offset 0; it never gets shorter (its numbers only grow), and
 * readers stop at the first newline.
 */
export function encodeProducerRecord(record: ProducerRecord): Buffer {
  return encodeRecord(JSON.stringify(record));
}

/** The record in `data`; undefined when torn, not JSON, or missing a field. Unknown fields are kept (and ignored). */
export function decodeProducerRecord(data: Buffer): ProducerRecord | undefined {
  const json = decodeRecord(data);
  if (json === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  return isRecord(value) ? value : undefined;
}

function isRecord(value: unknown): value is ProducerRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  const count = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  return BUS_MODES.includes(r['mode'] as BusMode) && typeof r['host'] === 'string' && count(r['pid'])
    && count(r['started']) && count(r['chunks']) && count(r['bytes']) && (r['last'] === null || count(r['last']));
}

interface RegistrationOptions {
  readonly removeDirWhenLast: boolean;
  readonly liveness: Liveness;
}

export class ProducerRegistration {
  readonly #dir: string;
  readonly #name: string;
  readonly #removeDirWhenLast: boolean;
  readonly #liveness: Liveness;
  #record: ProducerRecord;
  #fd: number;
  #holding: Holding | undefined;

  private constructor(dir: string, name: string, fd: number, record: ProducerRecord, options: RegistrationOptions) {
    this.#dir = dir;
    this.#name = name;
    this.#fd = fd;
    this.#record = record;
    this.#removeDirWhenLast = options.removeDirWhenLast;
    this.#liveness = options.liveness;
  }

  /**
   * Registers this process as a producer of the bus, and removes the
   * registrations of producers that are gone. `removeDirWhenLast`: the last
   * registration to close removes `FILE.producers/` too, so a bus in the
   * reference's modes is left as the reference would leave it.
   */
  static create(paths: BusPaths, fileMode: FileMode, busMode: BusMode, options: RegistrationOptions): ProducerRegistration {
    const dir = producersDir(paths);
    const record: ProducerRecord = { mode: busMode, host: HOST, pid: process.pid, started: Date.now(), chunks: 0, bytes: 0, last: null };
    for (let attempt = 1; ; attempt++) {
      // A new name each time: a sweeper late to remove the last one must not hit this one.
      const name = registrationName();
      ensureDirectory(dir, fileMode, paths);
      const temp = path.join(dir, registrationTempName(name));
      let fd: number;
      try {
        fd = createPrivateFile(temp, fs.constants.O_RDWR | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, fileMode);
      } catch (error) {
        if (errnoCode(error) === 'ENOENT' && attempt < CREATE_ATTEMPTS) continue;
        throw ioError('register producer', temp, error);
      }
      const registration = new ProducerRegistration(dir, name, fd, record, options);
      let failure: unknown;
      try {
        registration.#holding = options.liveness.hold(fd, temp, { created: true });
        if (registration.#holding !== undefined) {
          registration.#write();
          fs.renameSync(temp, path.join(dir, name));
        }
      } catch (error) {
        failure = error;
      }
      if (registration.#holding !== undefined && failure === undefined) {
        registration.#sweep();
        return registration;
      }
      registration.#holding?.release();
      fs.rmSync(temp, { force: true });
      fs.closeSync(fd);
      // A sweep (scanRegistry) share-locked the new file for a moment
      // (it could not be held) or removed it before it was held: again.
      const raced = failure === undefined || errnoCode(failure) === 'ENOENT';
      if (raced && attempt < CREATE_ATTEMPTS) continue;
      throw failure instanceof FilebusError ? failure : ioError('register producer', temp, failure ?? new Error('held by another process'));
    }
  }

  /** Rewrites the record's progress. A failure is ignored: the record only informs `status`. */
  update(progress: ProducerProgress): void {
    if (this.#fd < 0) return;
    this.#record = { ...this.#record, ...progress };
    try {
      this.#write();
    } catch { /* a full disk must not stop the stream over a status line */ }
  }

  /**
   * Whether another producer is running on this bus. Registrations of
   * producers that died are removed on the way. Call under the bus lock.
   */
  othersRunning(): boolean {
    return this.#sweep();
  }

  close(): void {
    if (this.#fd < 0) return;
    fs.rmSync(path.join(this.#dir, this.#name), { force: true });
    this.#holding?.release();
    fs.closeSync(this.#fd);
    this.#fd = -1;
    if (this.#removeDirWhenLast) {
      // Fails harmlessly while another producer is registered; one creating
      // its registration right now finds the directory gone and makes it again.
      try { fs.rmdirSync(this.#dir); } catch { /* not empty, or gone already */ }
    }
  }

  /**
   * Removes dead producers' registrations, and the temporary ones of
   * producers killed before renaming theirs into place; returns whether
   * another producer is live.
   */
  #sweep(): boolean {
    let others = false;
    for (const entry of scanRegistry(this.#dir, this.#liveness)) {
      if (entry.fileName === this.#name) continue;
      if (entry.live) others ||= !entry.temporary;
      else {
        try { fs.rmSync(path.join(this.#dir, entry.fileName), { force: true }); } catch { /* another user's: it stays, dead */ }
      }
    }
    return others;
  }

  #write(): void {
    const data = encodeProducerRecord(this.#record);
    fs.writeSync(this.#fd, data, 0, data.length, 0);
  }
}

function ensureDirectory(dir: string, mode: FileMode, paths: BusPaths): void {
  try {
    createDirectory(dir, mode);
  } catch (error) {
    if (error instanceof FilebusError) throw error;
    if (errnoCode(error) !== 'EEXIST') throw ioError('create directory', dir, error);
  }
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch (error) {
    throw ioError('create directory', dir, error);
  }
  checkBusDirectory(dir, st, paths);
}

/** One registration as seen from outside: whether its producer runs, and its record. */
export interface ProducerState {
  readonly fileName: string;
  readonly live: boolean;
  /** Undefined for a registration without a readable record (an older filebus wrote empty ones). */
  readonly record: ProducerRecord | undefined;
}

/**
 * Reads every registration in `dir` without changing anything: each is
 * opened read-only and its liveness checked (flock buses: a non-blocking
 * shared flock, dropped at once by closing the descriptor; mkdir buses:
 * the age of its heartbeat).
 */
export function inspectRegistrations(dir: string, liveness: Liveness = flockLiveness): ProducerState[] {
  return scanRegistry(dir, liveness).filter((f) => !f.temporary).map(({ fileName, live, record }) => ({ fileName, live, record }));
}

interface RegistryFile extends ProducerState {
  /**
   * `.NAME.producer.new`, a registration being written before its rename
   * into place. A producer killed in between leaves it, and no rename will
   * ever take it: dead ones are swept like registrations. One just created
   * and not yet held may go too; its producer's rename then fails with
   * ENOENT and it starts over.
   */
  readonly temporary: boolean;
}

function scanRegistry(dir: string, liveness: Liveness): RegistryFile[] {
  const files: RegistryFile[] = [];
  for (const fileName of listDirectory(dir).sort()) {
    const kind = registryEntryKind(fileName);
    if (kind === undefined) continue;
    const temporary = kind === 'temporary';
    const file = path.join(dir, fileName);
    let fd: number;
    try {
      // O_NONBLOCK: a named pipe planted here must not hang whoever looks.
      fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch {
      continue; // gone meanwhile (or renamed into place), or not ours to read
    }
    try {
      // Another user's file here (FILE.producers/ writable by every user) is
      // no producer of ours: it must neither hold the end marker back nor be swept.
      if (distrust(fs.fstatSync(fd), 'file', directoryTrust(dir)) !== undefined) continue;
      const live = liveness.isHeld(fd, file);
      files.push({ fileName, temporary, live, record: temporary ? undefined : readProducerRecord(fd) });
    } finally {
      fs.closeSync(fd);
    }
  }
  return files;
}

/** Longest record read: far more than a record holds today, leaving room for fields to come. */
const RECORD_READ_LENGTH = 1024;

function readProducerRecord(fd: number): ProducerRecord | undefined {
  try {
    return readRecord(fd, RECORD_READ_LENGTH, decodeProducerRecord);
  } catch {
    return undefined;
  }
}
