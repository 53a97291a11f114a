/**
 * The on-disk format checker: what filebus leaves beside FILE, read the
 * way docs/protocol.md describes it, for tests to check.
 *
 * The names and records are restated here from the documentation rather
 * than taken from src/wire, so that a test checks the format itself, not
 * that the code agrees with itself:
 * - FILE.segments/<seq, 20 digits>.<CRC-32 of the bytes, 8 hex digits>
 * - FILE.consumers/<name>.cursor: `<position, 20 digits> <CRC-32 of the
 *   digits, 8 hex digits>\n` (30 bytes)
 * - FILE.producers/HOST.PID.HEX.producer: a running producer's registration
 * - lossy mode's catch-up ring: `.BASE.<seq, 20 digits>.recent` beside FILE
 * - temporary files `.BASE.HOST.PID.N.HEX.new` beside FILE (and the
 *   reference implementation's `BASE.__new__`)
 * - FILE.lock, flocked while a process works on the bus.
 */
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { flockSync } from 'fs-ext';

const SEGMENT = /^(\d{20})\.([0-9a-f]{8})$/;
const CURSOR = /^(\d{20}) ([0-9a-f]{8})\n$/;
export const CURSOR_RECORD_SIZE = 30;

/** The names in `dir`; none if it does not exist. */
function namesIn(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

// ------------------------------------------------------------------ segments

export interface SegmentFile {
  readonly seq: number;
  readonly crc: number;
  readonly name: string;
  readonly path: string;
}

export function segmentsDirOf(bus: string): string {
  return `${bus}.segments`;
}

/** The segment files of the bus, oldest first (anything else in FILE.segments is left out). */
export function segments(bus: string): SegmentFile[] {
  const dir = segmentsDirOf(bus);
  const out: SegmentFile[] = [];
  for (const name of namesIn(dir)) {
    const m = SEGMENT.exec(name);
    if (m) out.push({ seq: Number(m[1]), crc: parseInt(m[2]!, 16), name, path: path.join(dir, name) });
  }
  return out.sort((a, b) => a.seq - b.seq);
}

/** Every entry of FILE.segments, segment or not. */
export function segmentDirEntries(bus: string): string[] {
  return namesIn(segmentsDirOf(bus));
}

/** `cat FILE.segments/*`: the files of the directory, in sorted name order, concatenated. */
export function catSegments(bus: string): Buffer {
  const dir = segmentsDirOf(bus);
  return Buffer.concat(fs.readdirSync(dir).sort().map((name) => fs.readFileSync(path.join(dir, name))));
}

/** Whether `data` (by default, what the segment holds now) matches the checksum in the segment's name. */
export function segmentIntact(segment: SegmentFile, data: Buffer = fs.readFileSync(segment.path)): boolean {
  return (crc32(data) >>> 0) === segment.crc;
}

/** The name segment `seq` holding `data` has. */
export function segmentName(seq: number, data: Buffer): string {
  return `${String(seq).padStart(20, '0')}.${(crc32(data) >>> 0).toString(16).padStart(8, '0')}`;
}

/**
 * Counts the entries of FILE.segments every `everyMs` until stopped; returns
 * the samples. Runs on this process's event loop, so keep the loop free.
 */
export function sampleSegmentCount(bus: string, everyMs = 20): { stop(): number[]; samples: number[] } {
  const samples: number[] = [];
  const timer = setInterval(() => samples.push(segmentDirEntries(bus).length), everyMs);
  timer.unref();
  return {
    samples,
    stop() {
      clearInterval(timer);
      samples.push(segmentDirEntries(bus).length);
      return samples;
    },
  };
}

// ------------------------------------------------------------------- cursors

export function consumersDirOf(bus: string): string {
  return `${bus}.consumers`;
}

export function cursorPath(bus: string, name: string): string {
  return path.join(consumersDirOf(bus), `${name}.cursor`);
}

/** The consumers with a cursor file (names without `.cursor`), sorted. */
export function cursorIds(bus: string): string[] {
  return namesIn(consumersDirOf(bus)).filter((n) => n.endsWith('.cursor')).map((n) => n.slice(0, -'.cursor'.length)).sort();
}

/**
 * Whether consumer `name`'s cursor exists with its first record written (a
 * consumer creates the file, then writes the record, both under the bus lock).
 */
export function registered(bus: string, name: string): boolean {
  try {
    return fs.statSync(cursorPath(bus, name)).size === CURSOR_RECORD_SIZE;
  } catch {
    return false;
  }
}

/** The record a cursor at `position` holds. */
export function cursorRecord(position: number): Buffer {
  const digits = String(position).padStart(20, '0');
  return Buffer.from(`${digits} ${(crc32(digits) >>> 0).toString(16).padStart(8, '0')}\n`);
}

/**
 * The position recorded in a cursor file: the next segment its consumer
 * will emit. Undefined if the file is gone; throws if it is not a valid
 * record.
 */
export function readCursor(file: string): number | undefined {
  let record = Buffer.alloc(0);
  // The owner rewrites the record in place: a read racing that may see it
  // torn, as filebus itself allows for; a second look sees it whole.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      record = fs.readFileSync(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const m = CURSOR.exec(record.toString('latin1'));
    if (record.length === CURSOR_RECORD_SIZE && m && (crc32(m[1]!) >>> 0) === parseInt(m[2]!, 16)) return Number(m[1]);
  }
  throw new Error(`cursor ${file} is not a valid ${CURSOR_RECORD_SIZE}-byte record: ${JSON.stringify(record.toString('latin1'))}`);
}

// ------------------------------------------------------- producers, the ring

export interface Registration {
  readonly name: string;
  readonly host: string;
  readonly pid: number;
  readonly path: string;
}

/** The producer registrations in FILE.producers (not the `.NAME.new` ones still being made). */
export function registrations(bus: string): Registration[] {
  const dir = `${bus}.producers`;
  const out: Registration[] = [];
  for (const name of namesIn(dir)) {
    const m = /^([A-Za-z0-9_-]+)\.(\d+)\.[0-9a-f]{8}\.producer$/.exec(name);
    if (m) out.push({ name, host: m[1]!, pid: Number(m[2]), path: path.join(dir, name) });
  }
  return out;
}

/** The catch-up ring entry of lossy chunk `seq` (a number, or digits beyond a safe integer). */
export function ringEntryPath(bus: string, seq: number | string): string {
  return path.join(path.dirname(bus), `.${path.basename(bus)}.${String(seq).padStart(20, '0')}.recent`);
}

// ------------------------------------------------------------ temporary files

/**
 * Temporary files of bus `bus` (`.BASE.HOST.PID.N.HEX.new`, and the
 * reference's `BASE.__new__`), optionally only those of process `pid`.
 */
export function tempFiles(bus: string, pid?: number): string[] {
  const base = path.basename(bus);
  return namesIn(path.dirname(bus)).filter((n) => {
    const ours = n.startsWith(`.${base}.`) && n.endsWith('.new');
    if (pid !== undefined) return ours && tempPid(bus, n) === pid;
    return ours || n === `${base}.__new__`;
  });
}

/** The pid in a filebus temporary name of bus `bus`, or undefined. */
export function tempPid(bus: string, name: string): number | undefined {
  const m = /^([A-Za-z0-9_-]+)\.(\d+)\.\d+\.[0-9a-f]{8}\.new$/.exec(name.slice(path.basename(bus).length + 2));
  return m ? Number(m[2]) : undefined;
}

// --------------------------------------------------------------------- locks

/**
 * Whether someone holds a flock on `file` right now: probed with a
 * non-blocking exclusive flock of our own on a read-only descriptor (so a
 * missing file is not created: 'absent'), let go at once. A symlink there
 * is not followed (the open fails).
 */
export function lockState(file: string): 'held' | 'free' | 'absent' {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw error;
  }
  try {
    flockSync(fd, 'exnb');
    flockSync(fd, 'un');
    return 'free';
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return 'held';
    throw error;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Whether nobody holds the bus lock (FILE.lock) right now. A consumer holds
 * it while it registers; stopping one (SIGSTOP) before it lets go would
 * wedge the bus.
 */
export function busLockFree(bus: string): boolean {
  return lockState(`${bus}.lock`) !== 'held';
}

// ---------------------------------------------------------------- the tree

/** Every entry under dir (recursive), as sorted relative paths; directories end with '/', symlinks show their target. */
export function listTree(dir: string): string[] {
  const result: string[] = [];
  const walk = (rel: string): void => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const name = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        result.push(`${name}/`);
        walk(name);
      } else if (entry.isSymbolicLink()) {
        result.push(`${name} -> ${fs.readlinkSync(path.join(dir, name))}`);
      } else {
        result.push(name);
      }
    }
  };
  walk('');
  return result.sort();
}
