import fs from 'node:fs';
import { FilebusError, errnoCode, ioError } from '../errors.js';
import type { LockStrategy } from '../options.js';
import { createFile, type FileMode } from '../util/permissions.js';
import { directoryTrust, parentOf, requireTrusted } from '../util/trust.js';
import type { BusLock, LockPaths } from './bus-lock.js';
import { FlockLock } from './flock.js';
import { flockLiveness, heartbeatLiveness, type Liveness } from './liveness.js';
import { MkdirLock } from './mkdir-lock.js';

/**
 * Which lock strategy a bus uses, and keeping processes of the other
 * strategy off it: two processes that lock a bus differently do not exclude
 * each other at all.
 *
 * On disk: a bus that uses mkdir locks has the file FILE.lock-strategy,
 * holding the line `mkdir`, written by its first mkdir-strategy process
 * that writes to the bus, and never removed. A flock bus has FILE.lock
 * (created by the first process to lock it, filebus or the reference, and
 * never removed either). A process refuses a bus that carries the other
 * strategy's file. Whoever creates its strategy's file looks for the
 * other's once more afterwards, so of two processes of different strategies
 * starting together at least one sees the other and refuses (and removes
 * the file it just created).
 */
export type LockStrategyOnDisk = LockStrategy | 'mixed' | 'none';

const MARKER_CONTENT = 'mkdir\n';

export function createBusLock(strategy: LockStrategy, paths: LockPaths, mode: FileMode): BusLock {
  if (strategy === 'mkdir') return new MkdirLock(paths, mode);
  // FILE.lock appears on first use, as with the reference; whoever creates
  // it then looks for the mkdir marker, closing the race with claimLockStrategy.
  return new FlockLock(paths.lock, mode, () => {
    if (!readMarker(paths)) return;
    fs.rmSync(paths.lock, { force: true });
    throw mismatch(paths, 'flock', 'mkdir');
  });
}

/** How a bus with this strategy tells that a cursor's or a producer's owner still runs. */
export function livenessFor(strategy: LockStrategy): Liveness {
  return strategy === 'mkdir' ? heartbeatLiveness : flockLiveness;
}

/**
 * The strategy of the bus at `paths` as its files tell: 'none' when no
 * process has locked it yet, 'mixed' when it carries both strategies' files
 * (possible only through processes that ignore the marker, such as the
 * reference filebus, or by hand).
 */
export function detectLockStrategy(paths: LockPaths): LockStrategyOnDisk {
  const marker = readMarker(paths);
  const flockFile = exists(paths.lock);
  if (marker && flockFile) return 'mixed';
  if (marker) return 'mkdir';
  if (flockFile) return 'flock';
  // A lock directory without a marker: left by hand, or by a process that died creating the marker.
  if (!exists(paths.lockDir)) return 'none';
  checkLockDir(paths);
  return 'mkdir';
}

/**
 * Refuses a bus that uses another strategy than `strategy`, without
 * changing anything (for processes that do not write to the bus).
 */
export function checkLockStrategy(paths: LockPaths, strategy: LockStrategy): void {
  const found = detectLockStrategy(paths);
  if (found === 'mixed') throw mixed(paths);
  if (found !== 'none' && found !== strategy) throw mismatch(paths, strategy, found);
  if (strategy === 'mkdir') checkLockDir(paths);
}

/**
 * Refuses a bus that uses another strategy. For mkdir, then marks the bus
 * as a mkdir bus, so that flock processes starting later (or at the same
 * moment) refuse it in turn. flock buses are marked by FILE.lock itself,
 * when the lock is first used (createBusLock).
 */
export function claimLockStrategy(paths: LockPaths, strategy: LockStrategy, mode: FileMode): void {
  checkLockStrategy(paths, strategy);
  if (strategy === 'flock') return;
  const created = createMarker(paths, mode);
  if (!exists(paths.lock)) return;
  if (created) fs.rmSync(paths.strategyMarker, { force: true });
  throw mismatch(paths, 'mkdir', 'flock');
}

function mismatch(paths: LockPaths, wanted: LockStrategy, found: LockStrategy): FilebusError {
  const evidence = found === 'mkdir' ? (exists(paths.strategyMarker) ? `${paths.strategyMarker} says so` : `${paths.lockDir} exists`) : `${paths.lock} exists`;
  const hint = found === 'flock' ? `; use --lock flock, or remove ${paths.lock} if no process uses the bus` : '; use --lock mkdir';
  return new FilebusError('ERR_FILEBUS_LOCK_STRATEGY',
    `${paths.file} is locked with --lock ${found} (${evidence}), not --lock ${wanted}: every process on a bus must use the same lock${hint}`,
    { path: paths.file });
}

function mixed(paths: LockPaths): FilebusError {
  return new FilebusError('ERR_FILEBUS_LOCK_STRATEGY',
    `${paths.file} has both ${paths.lock} (--lock flock) and ${paths.strategyMarker} (--lock mkdir): processes with different locks have used it; stop them all and remove the one not wanted`,
    { path: paths.file });
}

function checkLockDir(paths: LockPaths): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(paths.lockDir);
  } catch {
    return;
  }
  if (!st.isDirectory()) {
    throw new FilebusError('ERR_FILEBUS_BAD_PATH', `${paths.lockDir} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}, not the bus's lock directory`, { path: paths.lockDir });
  }
  // Another user's lock directory would never be released: the bus would stall until it looked stale.
  requireTrusted(paths.lockDir, st, 'directory', directoryTrust(parentOf(paths.lockDir)), 'lock directory');
}

/** Whether the bus has the mkdir strategy's marker. A marker holding anything but `mkdir` is refused. */
function readMarker(paths: LockPaths): boolean {
  let content: string;
  try {
    const fd = fs.openSync(paths.strategyMarker, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      const st = fs.fstatSync(fd);
      requireTrusted(paths.strategyMarker, st, 'file', directoryTrust(parentOf(paths.strategyMarker)), 'lock strategy marker');
      if (!st.isFile()) throw badMarker(paths);
      const buffer = Buffer.alloc(64);
      content = buffer.subarray(0, fs.readSync(fd, buffer, 0, buffer.length, 0)).toString('latin1');
    } finally {
      fs.closeSync(fd);
    }
  } catch (error) {
    if (error instanceof FilebusError) throw error;
    if (errnoCode(error) === 'ENOENT') return false;
    if (errnoCode(error) === 'ELOOP') throw badMarker(paths);
    throw ioError('read', paths.strategyMarker, error);
  }
  // An empty marker is one being written by its creator this instant.
  if (content === MARKER_CONTENT || content === '') return true;
  throw badMarker(paths);
}

function badMarker(paths: LockPaths): FilebusError {
  return new FilebusError('ERR_FILEBUS_BAD_PATH', `${paths.strategyMarker} is not a lock strategy marker (a regular file holding 'mkdir')`, { path: paths.strategyMarker });
}

/** Writes the marker unless it exists; true when this call created it. */
function createMarker(paths: LockPaths, mode: FileMode): boolean {
  let fd: number;
  try {
    fd = createFile(paths.strategyMarker, fs.constants.O_WRONLY | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, mode);
  } catch (error) {
    if (errnoCode(error) === 'EEXIST') return false;
    throw ioError('create', paths.strategyMarker, error);
  }
  try {
    fs.writeSync(fd, MARKER_CONTENT);
  } catch (error) {
    fs.closeSync(fd);
    fs.rmSync(paths.strategyMarker, { force: true });
    throw ioError('write', paths.strategyMarker, error);
  }
  fs.closeSync(fd);
  return true;
}

function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return false;
    throw ioError('stat', p, error);
  }
}
