import fs from 'node:fs';
import path from 'node:path';
import { FilebusError, errnoCode, ioError } from '../errors.js';
import { tryFlock } from '../lock/flock.js';
import { detectLockStrategy, livenessFor } from '../lock/strategy.js';
import type { BusMode } from '../options.js';
import { scanCursors } from '../wire/cursor-file.js';
import {
  busPaths, consumersDir, END_MARKER_CRC, isAnonymous, parseRegistrationName, producersDir, segmentsDir, type BusPaths,
} from '../wire/layout.js';
import { takenNames } from '../wire/taken-chunk.js';
import { inspectRegistrations, type ProducerState } from '../wire/producer-registry.js';
import { listSegments } from '../wire/segments.js';
import { untrusted } from '../util/trust.js';

/**
 * How a bus's writers exclude each other, as far as the files on disk tell:
 * 'mixed' when both strategies' files are there (processes refuse such a
 * bus), 'unknown' when neither is (nothing has locked it yet).
 */
export type LockStrategyName = 'flock' | 'mkdir' | 'mixed' | 'unknown';

/**
 * The mode a bus is in, as far as its files tell. Lossy and back-pressure
 * buses look the same on disk; filebus producers say which in their
 * registration, reference producers do not register:
 * `'lossy or back-pressure'` is such a bus with no filebus producer's
 * record, `'unknown'` one whose records disagree or that has none of the
 * files that would tell.
 */
export type BusStatusMode = BusMode | 'lossy or back-pressure' | 'unknown';

/** A registered filebus producer (FILE.producers/). */
export interface ProducerStatus {
  readonly host: string;
  readonly pid: number;
  /** False for a producer that died without unregistering (killed). */
  readonly alive: boolean;
  /** The mode it publishes in; null when its registration holds no record (an older filebus). */
  readonly mode: BusMode | null;
  /** ISO 8601 times; null when unknown (or, for lastChunkAt, before its first chunk). */
  readonly startedAt: string | null;
  readonly lastChunkAt: string | null;
  /** Chunks and bytes it had published when it last rewrote its record (at most about a second ago). */
  readonly chunks: number | null;
  readonly bytes: number | null;
}

/** A registered multicast consumer (FILE.consumers/ID.cursor). */
export interface ConsumerStatus {
  /** The cursor's id: the consumer's name, or `~HOST.PID.HEX` for an anonymous consumer. */
  readonly id: string;
  /** The name of a named consumer; null for an anonymous one. */
  readonly name: string | null;
  /** Whether the consumer runs (it holds the flock on its cursor). */
  readonly alive: boolean;
  /** The next segment number it will emit: it has delivered every segment before it. */
  readonly position: number;
  /** Segments published that it has not delivered yet (the end marker counts), and their bytes. */
  readonly lagChunks: number;
  readonly lagBytes: number;
}

/** The newest chunk on the bus. */
export interface NewestChunkStatus {
  /**
   * Multicast: its segment number. Other modes number nothing on disk: the
   * chunks published so far by the live filebus producers (null without one).
   */
  readonly number: number | null;
  /** Its size; null when it is no longer on disk (back-pressure: already taken). */
  readonly bytes: number | null;
  /** When it was published (ISO 8601), and how long ago in seconds. */
  readonly at: string | null;
  readonly ageSeconds: number | null;
  /** It is an end-of-stream marker (an empty segment, or an empty FILE in back-pressure mode). */
  readonly endOfStream: boolean;
}

/** What `filebus status --json` prints and `busStatus()` returns. Fields are only ever added. */
export interface BusStatus {
  /** The version of this shape: 1. */
  readonly version: 1;
  /** FILE, as an absolute path. */
  readonly filename: string;
  /** When the bus was inspected (ISO 8601). */
  readonly checkedAt: string;
  readonly mode: BusStatusMode;
  /** How writers exclude each other, and whether the lock is held at this instant (null: cannot tell). */
  readonly lock: { readonly strategy: LockStrategyName; readonly held: boolean | null };
  /**
   * Whether a producer runs: true when a registered filebus producer is
   * alive; false on a multicast bus without one; null on a lossy or
   * back-pressure bus without one, where a reference producer (which does
   * not register) could still be running.
   */
  readonly producerLive: boolean | null;
  /** Registered producers, alive or left behind by a killed one. */
  readonly producers: readonly ProducerStatus[];
  /** Null when the bus holds no chunk and no producer has reported one. */
  readonly newestChunk: NewestChunkStatus | null;
  /**
   * What the bus keeps on disk: multicast segments (oldest and newest
   * number), or in the other modes FILE and the back-pressure chunks
   * consumers have taken but not yet delivered (oldest and newest null).
   */
  readonly retained: { readonly chunks: number; readonly bytes: number; readonly oldest: number | null; readonly newest: number | null };
  /** Multicast consumers, sorted by id; empty in the other modes. */
  readonly consumers: readonly ConsumerStatus[];
}

interface SegmentOnDisk {
  readonly seq: number;
  readonly crc: number;
  readonly size: number;
  readonly mtimeMs: number;
}

/**
 * Reports the state of the bus at `filename` without changing anything on
 * disk: no file, directory, cursor or lock file is created or removed, and
 * the only locks taken are non-blocking try-locks released at once.
 * Rejects with ERR_FILEBUS_NOT_FOUND when there is no bus there.
 */
export async function busStatus(filename: string): Promise<BusStatus> {
  if (typeof filename !== 'string' || filename === '' || filename.includes('\0')) {
    throw new FilebusError('ERR_FILEBUS_INVALID_OPTION', `--filename must be a non-empty path, got ${JSON.stringify(filename)}`);
  }
  const paths = busPaths(filename);
  const file = checkBusExists(paths);
  const now = Date.now();
  const found = detectLockStrategy(paths);
  const strategy: LockStrategyName = found === 'none' ? 'unknown' : found;
  // A bus with both strategies' files, or none yet, is read as the reference's: flock.
  const liveness = livenessFor(strategy === 'mkdir' ? 'mkdir' : 'flock');
  const registrations = inspectRegistrations(producersDir(paths), liveness);
  const segmentDir = segmentsDir(paths);
  const multicast = kindOf(segmentDir) === 'directory' || kindOf(consumersDir(paths)) === 'directory';
  const mode = modeOf(registrations, { multicast, hasFile: file !== undefined || kindOf(paths.lock) !== undefined });
  const live = registrations.filter((r) => r.live);
  const held = strategy === 'flock' ? flockHeldNow(paths.lock) : undefined;
  const base = {
    version: 1 as const,
    filename: paths.file,
    checkedAt: new Date(now).toISOString(),
    mode,
    lock: { strategy, held: held ?? null },
    producerLive: live.length > 0 ? true : mode === 'multicast' ? false : null,
    producers: registrations.map(producerStatus),
  };
  if (!multicast) {
    const published = live.some((r) => r.record) ? live.reduce((sum, r) => sum + (r.record?.chunks ?? 0), 0) : null;
    const lastReported = Math.max(-1, ...live.map((r) => r.record?.last ?? -1));
    const newestChunk = file ? chunk(published, file.size, file.mtimeMs, now, { endOfStream: file.size === 0 && mode !== 'lossy' })
      : lastReported >= 0 ? chunk(published, null, lastReported, now, { endOfStream: false }) : null;
    return {
      ...base,
      newestChunk,
      retained: retainedBesideFile(paths, file),
      consumers: [],
    };
  }
  const segments = segmentsOnDisk(segmentDir);
  const newest = segments.at(-1);
  return {
    ...base,
    newestChunk: newest ? chunk(newest.seq, newest.size, newest.mtimeMs, now, { endOfStream: newest.crc === END_MARKER_CRC && newest.size === 0 }) : null,
    retained: {
      chunks: segments.length,
      bytes: segments.reduce((sum, s) => sum + s.size, 0),
      oldest: segments[0]?.seq ?? null,
      newest: newest?.seq ?? null,
    },
    consumers: scanCursors(consumersDir(paths), liveness)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((cursor) => {
        const unread = segments.filter((s) => s.seq >= cursor.position);
        return {
          id: cursor.id,
          name: isAnonymous(cursor.id) ? null : cursor.id,
          alive: cursor.live,
          position: cursor.position,
          lagChunks: newest ? Math.max(0, newest.seq - cursor.position + 1) : 0,
          lagBytes: unread.reduce((sum, s) => sum + s.size, 0),
        };
      }),
  };
}

type Kind = 'file' | 'directory' | 'other';

function kindOf(target: string): Kind | undefined {
  try {
    const st = fs.lstatSync(target);
    return st.isFile() ? 'file' : st.isDirectory() ? 'directory' : 'other';
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw ioError('inspect', target, error);
  }
}

/**
 * The same path checks as the producer and consumer make, minus creating
 * anything; returns FILE's stat when it exists.
 */
function checkBusExists(paths: BusPaths): fs.Stats | undefined {
  let dir: fs.Stats;
  try {
    dir = fs.statSync(paths.dir);
  } catch (error) {
    const code = errnoCode(error);
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw ioError('inspect', paths.dir, error);
    throw new FilebusError('ERR_FILEBUS_NOT_FOUND', `no bus at ${paths.file}: ${paths.dir} does not exist`, { path: paths.file });
  }
  if (!dir.isDirectory()) throw new FilebusError('ERR_FILEBUS_DIRECTORY', `${paths.dir} is not a directory`, { path: paths.dir });
  let file: fs.Stats | undefined;
  try {
    // lstat: a symlink planted at FILE would have status report the size and age of what it names.
    file = fs.lstatSync(paths.file);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw ioError('inspect', paths.file, error);
  }
  if (file?.isSymbolicLink()) throw untrusted(paths.file, `bus file ${paths.file} is a symbolic link`);
  if (file?.isDirectory()) throw new FilebusError('ERR_FILEBUS_BAD_PATH', `${paths.file} is a directory, not a bus file`, { path: paths.file });
  if (file && !file.isFile()) throw new FilebusError('ERR_FILEBUS_BAD_PATH', `${paths.file} is not a regular file`, { path: paths.file });
  const lockKind = kindOf(paths.lock);
  if (lockKind !== undefined && lockKind !== 'file') {
    throw new FilebusError('ERR_FILEBUS_BAD_PATH', `${paths.lock} is not a regular file, not the bus's lock file`, { path: paths.lock });
  }
  const others = [segmentsDir(paths), consumersDir(paths), producersDir(paths)].some((p) => kindOf(p) !== undefined);
  if (!file && lockKind === undefined && !others) {
    throw new FilebusError('ERR_FILEBUS_NOT_FOUND', `no bus at ${paths.file}`, { path: paths.file });
  }
  return file;
}

/**
 * `multicast`: the bus has a multicast directory. `hasFile`: FILE or
 * FILE.lock exists, so something used the bus in a reference mode.
 */
function modeOf(registrations: readonly ProducerState[], bus: { multicast: boolean; hasFile: boolean }): BusStatusMode {
  if (bus.multicast) return 'multicast';
  // Live producers say what they publish; failing those, what the last ones did.
  for (const group of [registrations.filter((r) => r.live), registrations]) {
    const modes = new Set(group.flatMap((r) => (r.record ? [r.record.mode] : [])));
    if (modes.size === 1) return [...modes][0]!;
    if (modes.size > 1) return 'unknown';
  }
  return bus.hasFile ? 'lossy or back-pressure' : 'unknown';
}

function producerStatus(state: ProducerState): ProducerStatus {
  const r = state.record;
  // A registration's name tells who, for one without a record (an older filebus wrote empty ones).
  const named = parseRegistrationName(state.fileName);
  return {
    host: r?.host ?? named?.host ?? '',
    pid: r?.pid ?? named?.pid ?? 0,
    alive: state.live,
    mode: r?.mode ?? null,
    startedAt: r ? new Date(r.started).toISOString() : null,
    lastChunkAt: r?.last != null ? new Date(r.last).toISOString() : null,
    chunks: r?.chunks ?? null,
    bytes: r?.bytes ?? null,
  };
}

function chunk(number: number | null, bytes: number | null, atMs: number, now: number, kind: { endOfStream: boolean }): NewestChunkStatus {
  return {
    number,
    bytes,
    at: new Date(atMs).toISOString(),
    // Clocks of other hosts may run ahead: never a negative age.
    ageSeconds: Math.max(0, Math.round(now - atMs)) / 1000,
    endOfStream: kind.endOfStream,
  };
}

function segmentsOnDisk(dir: string): SegmentOnDisk[] {
  const found: SegmentOnDisk[] = [];
  for (const ref of listSegments(dir)) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(path.join(dir, ref.name));
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') continue; // deleted by retention meanwhile
      throw ioError('inspect segment', path.join(dir, ref.name), error);
    }
    found.push({ seq: ref.seq, crc: ref.crc, size: st.size, mtimeMs: st.mtimeMs });
  }
  return found;
}

/** FILE, plus back-pressure chunks taken and not yet delivered (`.taken`): all still on the bus. */
function retainedBesideFile(paths: BusPaths, file: fs.Stats | undefined): BusStatus['retained'] {
  let chunks = file ? 1 : 0;
  let bytes = file?.size ?? 0;
  for (const name of takenNames(paths)) {
    try {
      bytes += fs.lstatSync(path.join(paths.dir, name)).size;
      chunks += 1;
    } catch { /* delivered meanwhile */ }
  }
  return { chunks, bytes, oldest: null, newest: null };
}

/**
 * Whether someone holds the flock on FILE.lock right now, without ever
 * waiting for it: a non-blocking shared try-lock on a descriptor of our
 * own, dropped at once by closing it. Undefined when that cannot be told
 * (no lock file, or not readable).
 */
function flockHeldNow(lockFile: string): boolean | undefined {
  let fd: number;
  try {
    fd = fs.openSync(lockFile, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    return !tryFlock(fd, 'shared', lockFile);
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}
