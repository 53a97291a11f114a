import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { LockPaths } from '../lock/bus-lock.js';

/**
 * The wire layout: every name a bus has on disk, how each is made and how
 * each is recognized. docs/protocol.md describes the same names; this is
 * the one place in the code that spells them, so a name is changed (or a
 * new one added) here and nowhere else.
 *
 * Only names: nothing here touches the file system. The modules beside it
 * do the file operations on what these names point at.
 *
 * A parser answers undefined for a name not of its form. A name that
 * parses says nothing about who made it: bus directories may be shared
 * with other users, so the file behind a name is checked where it is
 * opened (util/trust.ts).
 */

// FILE and the names beside it

/**
 * The fixed names of one bus: FILE (the current chunk, replaced whole by
 * rename) and the lock strategies' names (LockPaths: FILE.lock,
 * FILE.lock.d, FILE.lock.d.stale, FILE.lock-strategy), and these.
 */
export interface BusPaths extends LockPaths {
  /** `.BASE.spare`: a back-pressure chunk's file kept after delivery for the next publish (spare-chunk.ts). */
  readonly spare: string;
  /** `.BASE.taker`: flocked by the one idle back-pressure consumer whose turn it is to take FILE (lock/taker-turn.ts). */
  readonly taker: string;
  /** The directory holding FILE; temporary files live here so rename is atomic. */
  readonly dir: string;
  /** The last path component of FILE. */
  readonly base: string;
}

export function busPaths(filename: string): BusPaths {
  const file = path.resolve(filename);
  const dir = path.dirname(file);
  const base = path.basename(file);
  return {
    file,
    lock: `${file}.lock`,
    lockDir: `${file}.lock.d`,
    lockGuard: `${file}.lock.d.stale`,
    strategyMarker: `${file}.lock-strategy`,
    spare: path.join(dir, `.${base}.spare`),
    taker: path.join(dir, `.${base}.taker`),
    dir,
    base,
  };
}

/** FILE.segments/: multicast segments (segmentName). */
export function segmentsDir(paths: BusPaths): string {
  return `${paths.file}.segments`;
}

/** FILE.consumers/: multicast cursors (cursorFileName). */
export function consumersDir(paths: BusPaths): string {
  return `${paths.file}.consumers`;
}

/** FILE.producers/: producers' registrations, in every mode (registrationName). */
export function producersDir(paths: BusPaths): string {
  return `${paths.file}.producers`;
}

/**
 * `dir/name` for a resolved directory and a plain file name: what
 * path.join gives, without its normalizing pass, which runs several times
 * per chunk (docs/performance.md, "What changed since the first run").
 */
export function childPath(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

// Who made a name

/** This host's name as it appears in names: no dots, so names split cleanly. */
export const HOST = os.hostname().replace(/[^A-Za-z0-9-]/g, '_') || 'host';

const HOST_PATTERN = '[A-Za-z0-9_-]+';

/** The host and process a name of ours was made by. */
export interface NameOwner {
  readonly host: string;
  readonly pid: number;
}

/** Eight random hex digits: keeps a name unguessable (O_EXCL refuses one that exists anyway). */
function randomHex(): string {
  return randomBytes(4).toString('hex');
}

// Unique names beside FILE: temporaries and taken chunks

let uniqueCounter = 0;
/**
 * Drawn once per process, not per name: pid and counter already make names
 * unique here, the token only keeps them unguessable.
 */
const UNIQUE_TOKEN = randomHex();

/**
 * A fresh temporary name beside FILE: `.BASE.HOST.PID.N.HEX.new`. The
 * reference uses the fixed name FILE.__new__; a unique name lets producers
 * write outside the lock and means a name planted by someone else is never
 * ours to open. Host and pid make a killed producer's leftovers
 * attributable, so the next producer can remove them (chunk-file.ts,
 * sweepStaleTemps). Cursors and registrations are born under such names
 * too, and network file system views link FILE to them (server-view.ts).
 */
export function tempPath(paths: BusPaths): string {
  return uniquePath(paths, 'new');
}

/** The host and pid a temporary name of this bus was made by; undefined for other names. */
export function tempOwner(paths: BusPaths, name: string): NameOwner | undefined {
  return parseUnique(paths, name, 'new');
}

/**
 * A back-pressure chunk taken by a consumer (taken-chunk.ts):
 * `.BASE.HOST.PID.N.HEX.taken`. Never swept as a leftover: it may be the
 * only copy of a chunk nobody has delivered yet.
 */
export function takenPath(paths: BusPaths): string {
  return uniquePath(paths, 'taken');
}

/** Whether `name` (in FILE's directory) is a taken chunk of this bus. */
export function isTakenName(paths: BusPaths, name: string): boolean {
  return parseUnique(paths, name, 'taken') !== undefined;
}

function uniquePath(paths: BusPaths, suffix: string): string {
  uniqueCounter = (uniqueCounter + 1) % 0x100000000;
  return childPath(paths.dir, `.${paths.base}.${HOST}.${process.pid}.${uniqueCounter}.${UNIQUE_TOKEN}.${suffix}`);
}

const UNIQUE_MIDDLE = new RegExp(`^(${HOST_PATTERN})\\.(\\d+)\\.\\d+\\.[0-9a-f]{8}$`);

function parseUnique(paths: BusPaths, name: string, suffix: string): NameOwner | undefined {
  const prefix = `.${paths.base}.`;
  const end = `.${suffix}`;
  if (!name.startsWith(prefix) || !name.endsWith(end)) return undefined;
  const match = UNIQUE_MIDDLE.exec(name.slice(prefix.length, name.length - end.length));
  if (!match) return undefined;
  const pid = Number(match[2]);
  return Number.isSafeInteger(pid) ? { host: match[1]!, pid } : undefined;
}

// Sequence numbers: segments, ring entries and cursor records

/** Digits of a sequence number in names and cursor records: fixed width, so names sort in stream order. */
export const SEQ_DIGITS = 20;
const SEQ = /^\d{20}$/;

/** A sequence number as its SEQ_DIGITS digits. */
export function formatSeq(seq: number): string {
  return String(seq).padStart(SEQ_DIGITS, '0');
}

/** The number SEQ_DIGITS digits stand for; undefined for anything else or a number past 2^53. */
export function parseSeq(digits: string): number | undefined {
  if (!SEQ.test(digits)) return undefined;
  const seq = Number(digits);
  return Number.isSafeInteger(seq) ? seq : undefined;
}

// Lossy mode's catch-up ring (recent-chunks.ts)

export interface RecentRef {
  readonly seq: number;
  readonly name: string;
}

const RECENT_SUFFIX = '.recent';

/** Ring entry `seq` of the bus: `.BASE.<seq, 20 digits>.recent` beside FILE. */
export function recentName(paths: BusPaths, seq: number): string {
  return `.${paths.base}.${formatSeq(seq)}${RECENT_SUFFIX}`;
}

export function parseRecentName(paths: BusPaths, name: string): RecentRef | undefined {
  const prefix = `.${paths.base}.`;
  if (!name.startsWith(prefix) || !name.endsWith(RECENT_SUFFIX)) return undefined;
  const seq = parseSeq(name.slice(prefix.length, -RECENT_SUFFIX.length));
  return seq === undefined ? undefined : { seq, name };
}

// Multicast segments (segments.ts)

/**
 * Chunk N of a multicast stream is `FILE.segments/<N, 20 digits>.<CRC-32,
 * 8 hex digits>`, holding the chunk's raw bytes and nothing else: the
 * checksum lives in the name so the bytes stay raw and a segment appears,
 * with its checksum, in one rename.
 */
export interface SegmentRef {
  readonly seq: number;
  readonly crc: number;
  readonly name: string;
}

/**
 * The CRC-32 of no bytes, which an end-of-stream marker (an empty segment)
 * carries in its name. A chunk with bytes can have it too: only names
 * with it need a look at the size.
 */
export const END_MARKER_CRC = 0;

const SEGMENT = /^(\d{20})\.([0-9a-f]{8})$/;

export function segmentName(seq: number, crc: number): string {
  return `${formatSeq(seq)}.${crc.toString(16).padStart(8, '0')}`;
}

export function parseSegmentName(name: string): SegmentRef | undefined {
  const match = SEGMENT.exec(name);
  if (!match) return undefined;
  const seq = parseSeq(match[1]!);
  return seq === undefined ? undefined : { seq, crc: parseInt(match[2]!, 16), name };
}

// Multicast cursors (cursor-file.ts)

const CURSOR_SUFFIX = '.cursor';
const CONSUMER_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$/;
/** What a consumer name may be, in words, for errors. */
export const CONSUMER_NAME_RULE = "1 to 100 letters, digits, '.', '_' or '-', not starting with '.' or '-'";

/**
 * A consumer's cursor is `FILE.consumers/<id>.cursor`. Named consumers use
 * their name as id; anonymous ones `~HOST.PID.HEX`, which no name can be.
 */
export function cursorFileName(id: string): string {
  return `${id}${CURSOR_SUFFIX}`;
}

/** The consumer id of a cursor file name; undefined for other names (hidden ones are temporaries). */
export function cursorIdOf(fileName: string): string | undefined {
  return fileName.endsWith(CURSOR_SUFFIX) && !fileName.startsWith('.') ? fileName.slice(0, -CURSOR_SUFFIX.length) : undefined;
}

/** Whether `name` may name a consumer (CONSUMER_NAME_RULE). */
export function isConsumerName(name: string): boolean {
  return CONSUMER_NAME.test(name);
}

/** A fresh id for an anonymous consumer: `~HOST.PID.HEX`. */
export function anonymousId(): string {
  return `~${HOST}.${process.pid}.${randomHex()}`;
}

export function isAnonymous(id: string): boolean {
  return id.startsWith('~');
}

// Producer registrations (producer-registry.ts)

const REGISTRATION_SUFFIX = '.producer';
const REGISTRATION_TEMP_SUFFIX = `${REGISTRATION_SUFFIX}.new`;
const REGISTRATION = new RegExp(`^(${HOST_PATTERN})\\.(\\d+)\\.[0-9a-f]{8}\\.producer$`);

/** A fresh registration name for this process: `HOST.PID.HEX.producer`. */
export function registrationName(): string {
  return `${HOST}.${process.pid}.${randomHex()}${REGISTRATION_SUFFIX}`;
}

/** The hidden name a registration is written and held under before its rename into place: `.NAME.new`. */
export function registrationTempName(name: string): string {
  return `.${name}.new`;
}

/**
 * What a name in FILE.producers/ is: a registration (`*.producer`, not
 * hidden), a registration still under its temporary name
 * (`.*.producer.new`), or neither (undefined). Any such name counts, not
 * only the ones registrationName makes: a registration nobody holds is
 * swept whatever its name.
 */
export function registryEntryKind(fileName: string): 'registration' | 'temporary' | undefined {
  if (fileName.startsWith('.')) return fileName.endsWith(REGISTRATION_TEMP_SUFFIX) ? 'temporary' : undefined;
  return fileName.endsWith(REGISTRATION_SUFFIX) ? 'registration' : undefined;
}

/** The host and pid in a registration name (registrationName); undefined for other names. */
export function parseRegistrationName(fileName: string): NameOwner | undefined {
  const match = REGISTRATION.exec(fileName);
  if (!match) return undefined;
  const pid = Number(match[2]);
  return Number.isSafeInteger(pid) ? { host: match[1]!, pid } : undefined;
}
