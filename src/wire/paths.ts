import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LockPaths } from '../lock/bus-lock.js';

/**
 * The names that make up one bus on disk. This is the only place that turns
 * a bus path into file names, so the layout can be read (and changed) here.
 */
export interface BusPaths extends LockPaths {
  /** FILE: the current chunk, replaced whole by rename. */
  readonly file: string;
  /** FILE.lock: the reference's lock file, locked with flock(2). */
  readonly lock: string;
  /** FILE.lock.d: the lock directory of `--lock mkdir`. */
  readonly lockDir: string;
  /** FILE.lock-strategy: present on buses that use `--lock mkdir`. */
  readonly strategyMarker: string;
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
    strategyMarker: `${file}.lock-strategy`,
    spare: path.join(dir, `.${base}.spare`),
    taker: path.join(dir, `.${base}.taker`),
    dir,
    base,
  };
}

/**
 * `dir/name` for a resolved directory and a plain file name: what
 * path.join gives, without its normalizing pass, which costs about 0.5 µs
 * a call on the bench machine and runs several times per chunk.
 */
export function childPath(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

let tempCounter = 0;
/**
 * Drawn once per process, not per chunk: pid and counter already make names
 * unique here, the token only keeps them unguessable, and O_EXCL refuses any
 * name that exists anyway.
 */
const TEMP_TOKEN = randomBytes(4).toString('hex');

/** This host's name as it appears in temporary names: no dots, so names split cleanly. */
export const HOST = os.hostname().replace(/[^A-Za-z0-9-]/g, '_') || 'host';

/**
 * A fresh temporary name beside FILE: `.BASE.HOST.PID.N.HEX.new`. The
 * reference uses the fixed name FILE.__new__; a unique name lets producers
 * write outside the lock and means a name planted by someone else is never
 * ours to open. Host and pid make a killed producer's leftovers
 * attributable, so the next producer can remove them.
 */
export function tempPath(paths: BusPaths): string {
  return uniquePath(paths, 'new');
}

/**
 * A back-pressure chunk taken by a consumer (taken-chunk.ts):
 * `.BASE.HOST.PID.N.HEX.taken`. Never swept as a leftover: it may be the
 * only copy of a chunk nobody has delivered yet.
 */
export function takenPath(paths: BusPaths): string {
  return uniquePath(paths, 'taken');
}

export function isTakenName(paths: BusPaths, name: string): boolean {
  return parseUnique(paths, name, 'taken') !== undefined;
}

function uniquePath(paths: BusPaths, suffix: string): string {
  tempCounter = (tempCounter + 1) % 0x100000000;
  return childPath(paths.dir, `.${paths.base}.${HOST}.${process.pid}.${tempCounter}.${TEMP_TOKEN}.${suffix}`);
}

/** The host and pid a temporary name of this bus was made by, or undefined for other names. */
export function tempOwner(paths: BusPaths, name: string): { host: string; pid: number } | undefined {
  return parseUnique(paths, name, 'new');
}

/** The host and pid in a unique name of this bus with this suffix (uniquePath), or undefined for other names. */
function parseUnique(paths: BusPaths, name: string, suffix: string): { host: string; pid: number } | undefined {
  const prefix = `.${paths.base}.`;
  const end = `.${suffix}`;
  if (!name.startsWith(prefix) || !name.endsWith(end)) return undefined;
  const match = /^([A-Za-z0-9_-]+)\.(\d+)\.\d+\.[0-9a-f]{8}$/.exec(name.slice(prefix.length, name.length - end.length));
  return match ? { host: match[1]!, pid: Number(match[2]) } : undefined;
}

/**
 * Removes temporary files left by producers of this host that are no
 * longer running (killed mid-publish). Files of live processes, and of
 * other hosts, are never touched.
 */
export function sweepStaleTemps(paths: BusPaths): number {
  let removed = 0;
  let names: string[];
  try {
    names = fs.readdirSync(paths.dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    const owner = tempOwner(paths, name);
    if (!owner || owner.host !== HOST || owner.pid === process.pid || isRunning(owner.pid)) continue;
    try {
      fs.unlinkSync(path.join(paths.dir, name));
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
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
