import fs from 'node:fs';
import { tryFlock } from '../lock/flock.js';
import type { BusPaths } from '../wire/paths.js';

/** How a bus's writers exclude each other, as far as the files on disk tell. */
export type LockStrategyName = 'flock' | 'mkdir' | 'unknown';

/**
 * MERGE(issue 6): a stand-in for `detectLockStrategy` from src/lock/. Today
 * every bus uses flock(2) on FILE.lock, so FILE.lock existing means flock;
 * replace this body with a call to detectLockStrategy when issue 6 lands.
 */
export function lockStrategyOf(paths: BusPaths): LockStrategyName {
  return fs.existsSync(paths.lock) ? 'flock' : 'unknown';
}

/**
 * Whether someone holds the bus lock right now, without ever waiting for
 * it: a non-blocking shared try-lock on a descriptor of our own, dropped at
 * once by closing it. Undefined when that cannot be told (no lock file, not
 * readable, or a strategy other than flock).
 */
export function lockHeld(paths: BusPaths, strategy: LockStrategyName): boolean | undefined {
  if (strategy !== 'flock') return undefined;
  let fd: number;
  try {
    fd = fs.openSync(paths.lock, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    return !tryFlock(fd, 'shared', paths.lock);
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}
