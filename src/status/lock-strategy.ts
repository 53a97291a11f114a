import fs from 'node:fs';
import { tryFlock } from '../lock/flock.js';
import type { Liveness } from '../lock/liveness.js';
import { detectLockStrategy, livenessFor } from '../lock/strategy.js';
import type { BusPaths } from '../wire/paths.js';

/**
 * How a bus's writers exclude each other, as far as the files on disk tell:
 * 'mixed' when both strategies' files are there (processes refuse such a
 * bus), 'unknown' when neither is (nothing has locked it yet).
 */
export type LockStrategyName = 'flock' | 'mkdir' | 'mixed' | 'unknown';

export function lockStrategyOf(paths: BusPaths): LockStrategyName {
  const found = detectLockStrategy(paths);
  return found === 'none' ? 'unknown' : found;
}

/** How to tell whether a cursor's or a registration's owner runs, on a bus of this strategy. */
export function livenessOf(strategy: LockStrategyName): Liveness {
  return livenessFor(strategy === 'mkdir' ? 'mkdir' : 'flock');
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
