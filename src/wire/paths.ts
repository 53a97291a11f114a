import { randomBytes } from 'node:crypto';
import path from 'node:path';

/**
 * The names that make up one bus on disk. This is the only place that turns
 * a bus path into file names, so the layout can be read (and changed) here.
 */
export interface BusPaths {
  /** FILE: the current chunk, replaced whole by rename. */
  readonly file: string;
  /** FILE.lock: the reference's lock file, locked with flock(2). */
  readonly lock: string;
  /** The directory holding FILE; temporary files live here so rename is atomic. */
  readonly dir: string;
  /** The last path component of FILE. */
  readonly base: string;
}

export function busPaths(filename: string): BusPaths {
  const file = path.resolve(filename);
  return { file, lock: `${file}.lock`, dir: path.dirname(file), base: path.basename(file) };
}

let tempCounter = 0;

/**
 * A fresh temporary name beside FILE. The reference uses the fixed name
 * FILE.__new__; a unique name lets producers write outside the lock and
 * means a name planted by someone else is never ours to open. The pid makes
 * leftovers of a killed producer attributable.
 */
export function tempPath(paths: BusPaths): string {
  tempCounter = (tempCounter + 1) % 0x100000000;
  return path.join(paths.dir, `.${paths.base}.${process.pid}.${tempCounter}.${randomBytes(4).toString('hex')}.new`);
}

/** True for names produced by tempPath for this bus. */
export function isTempName(paths: BusPaths, name: string): boolean {
  return name.startsWith(`.${paths.base}.`) && name.endsWith('.new');
}
