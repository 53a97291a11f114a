import fs from 'node:fs';
import path from 'node:path';
import { createDirectory, type FileMode } from '../util/permissions.js';
import { checkSharedDirectory, directoryTrust, ownerTrusted, requireTrusted } from '../util/trust.js';
import { FilebusError, errnoCode } from '../errors.js';
import type { BusLock } from '../lock/bus-lock.js';
import type { Liveness } from '../lock/liveness.js';
import { checkLockStrategy, claimLockStrategy, createBusLock, livenessFor } from '../lock/strategy.js';
import type { BusMode, LockStrategy, ResolvedBusOptions } from '../options.js';
import type { ChangeWatcher, NameFilter } from '../watch/change-watcher.js';
import { usesEvents, watchDirectory, watchFile } from '../watch/create-watcher.js';
import { createBusView, type BusView } from './bus-view.js';
import { detectFileSystem, type FileSystemInfo } from '../watch/file-system.js';
import { sweepStaleTemps } from '../wire/chunk-file.js';
import { busPaths, consumersDir, producersDir, segmentsDir, type BusPaths } from '../wire/layout.js';
import { refuseOtherMode } from './mode-guard.js';

/** Everything an engine needs to work on one bus, opened once per producer or consumer. */
export interface Bus {
  readonly options: ResolvedBusOptions;
  readonly paths: BusPaths;
  readonly lock: BusLock;
  /** How this bus tells that a cursor's or producer's owner still runs (flock, or mtime heartbeats on mkdir buses). */
  readonly liveness: Liveness;
  /** Local or shared with other hosts, and what follows from it (bus-view.ts). */
  readonly view: BusView;
  /** What the bus is set up with, for logging. */
  readonly info: BusInfo;
  /**
   * A watcher waking on changes to FILE, and to the names in FILE's
   * directory that `names.wanted` accepts where the watcher can name them
   * (`namesChanges`; chokidar and polling cannot); closed with the bus.
   */
  watchFile(names?: NameFilter): Promise<ChangeWatcher>;
  /** A watcher waking on the names in `dir` that `wanted` accepts, telling `onName` each; closed with the bus. */
  watchDirectory(dir: string, names: NameFilter): ChangeWatcher;
  /** Aborted by close() or by the caller's signal; every wait listens to it. */
  readonly signal: AbortSignal;
  close(): Promise<void>;
}

/** How a bus was set up; a Producer or Consumer emits it as 'bus' once open. */
export interface BusInfo {
  /** The file system holding the bus, and whether it counts as network. */
  readonly fileSystem: FileSystemInfo;
  /** 'events' when waits wake on file system events, 'poll' when only --sleep-interval ends them. */
  readonly watching: 'events' | 'poll';
  readonly lock: LockStrategy;
}

/** What a process of one side and mode may do to the bus's directory. */
interface Role {
  /**
   * Writes into FILE's directory (producers, back-pressure and multicast
   * consumers): marks the bus with its lock strategy, and clears the
   * temporary files that killed processes of this host left behind.
   */
  readonly writes: boolean;
  /** Replaces or deletes FILE (producers, back-pressure consumers): only a FILE that is a bus's. */
  readonly replacesFile: boolean;
  /** Creates FILE's directory when it is missing (producers): a consumer's misspelled path must not become a bus. */
  readonly createsDirectory: boolean;
}

function roleOf(side: 'producer' | 'consumer', mode: BusMode): Role {
  const producer = side === 'producer';
  return { writes: producer || mode !== 'lossy', replacesFile: producer || mode === 'back-pressure', createsDirectory: producer };
}

/**
 * Checks the bus path, creates FILE's directory if needed (producers), then
 * sets up the lock and the watcher. Every check comes before anything is
 * created, so a bad path leaves the file system untouched.
 */
export async function openBus(resolved: ResolvedBusOptions, side: 'producer' | 'consumer'): Promise<Bus> {
  const paths = busPaths(resolved.filename);
  const role = roleOf(side, resolved.mode);
  checkBusPath(paths, role, resolved);
  const liveness = livenessFor(resolved.lock);
  // A consumer of a bus whose producers run in another mode would wait for ever, or take what is not its to take.
  if (side === 'consumer' && resolved.mode !== 'lossy') refuseOtherMode(paths, resolved.mode, liveness);
  // Only processes that may lock mark the bus; the others just refuse the other strategy.
  if (role.writes) claimLockStrategy(paths, resolved.lock, resolved.fileMode);
  else checkLockStrategy(paths, resolved.lock);
  // Producers, and back-pressure consumers whose claims (server-view.ts) are temporary names too.
  if (role.writes) sweepStaleTemps(paths);
  const fileSystem = detectFileSystem(paths.dir);
  const events = usesEvents(resolved.watch, fileSystem);
  const controller = new AbortController();
  const signal = resolved.signal ? AbortSignal.any([resolved.signal, controller.signal]) : controller.signal;
  const lock = createBusLock(resolved.lock, paths, resolved.fileMode);
  // Watchers a caller closes early leave the set: a back-pressure consumer opens one each time its turn comes.
  const watchers = new Set<Promise<ChangeWatcher | undefined>>();
  const track = (created: Promise<ChangeWatcher>): Promise<ChangeWatcher> => {
    const entry = created.catch(() => undefined);
    watchers.add(entry);
    return created.then((watcher) => ({
      namesChanges: watcher.namesChanges,
      get generation() { return watcher.generation; },
      changedSince: (seen, timeoutMs, waitSignal) => watcher.changedSince(seen, timeoutMs, waitSignal),
      close: async () => {
        watchers.delete(entry);
        await watcher.close();
      },
    }));
  };
  let closed: Promise<void> | undefined;
  return {
    options: resolved,
    paths,
    lock,
    liveness,
    view: createBusView(paths, fileSystem, liveness),
    info: { fileSystem, watching: events ? 'events' : 'poll', lock: resolved.lock },
    signal,
    watchFile(names) {
      return track(watchFile(paths.file, { events, backend: resolved.watch === 'chokidar' ? 'chokidar' : 'events', names }));
    },
    watchDirectory(dir, names) {
      const watcher = watchDirectory(dir, { events, names });
      watchers.add(Promise.resolve(watcher));
      return watcher;
    },
    close() {
      closed ??= (async () => {
        controller.abort();
        lock.close();
        await Promise.all([...watchers].map(async (w) => (await w)?.close()));
      })();
      return closed;
    },
  };
}

function checkBusPath(paths: BusPaths, role: Role, options: ResolvedBusOptions): void {
  // FILE's directory is followed through symlinks: the path to it is the
  // user's choice. Every name inside it is not (util/trust.ts).
  let dirStat = statOrUndefined(paths.dir);
  if (dirStat && !dirStat.isDirectory()) {
    throw new FilebusError('ERR_FILEBUS_DIRECTORY', `${paths.dir} is not a directory`, { path: paths.dir });
  }
  if (!dirStat && !role.createsDirectory) {
    throw new FilebusError('ERR_FILEBUS_DIRECTORY', `directory ${paths.dir} does not exist (a consumer creates none: check the path, or start the producer first)`, { path: paths.dir });
  }
  if (!dirStat) {
    try {
      makeParents(paths.dir, options.fileMode);
      dirStat = fs.statSync(paths.dir);
    } catch (error) {
      if (error instanceof FilebusError) throw error;
      throw new FilebusError('ERR_FILEBUS_DIRECTORY', `cannot create directory ${paths.dir}: ${describe(error)}`, { path: paths.dir, cause: error });
    }
  }
  checkSharedDirectory(paths.dir, dirStat);
  const trust = directoryTrust(paths.dir, dirStat);
  const fileStat = lstatOrUndefined(paths.file);
  if (fileStat && (fileStat.isSymbolicLink() || !ownerTrusted(fileStat.uid, trust))) requireTrusted(paths.file, fileStat, 'file', trust, 'bus file');
  if (fileStat?.isDirectory()) {
    throw new FilebusError('ERR_FILEBUS_BAD_PATH', `${paths.file} is a directory, not a bus file`, { path: paths.file });
  }
  // A named pipe, socket or device would block or mislead readers: a bus file is a regular file.
  if (fileStat && !fileStat.isFile()) {
    throw new FilebusError('ERR_FILEBUS_BAD_PATH', `${paths.file} is not a regular file`, { path: paths.file });
  }
  const lockStat = lstatOrUndefined(paths.lock);
  if (lockStat && !lockStat.isFile()) {
    const what = lockStat.isDirectory() ? 'a directory' : lockStat.isSymbolicLink() ? 'a symbolic link' : 'not a regular file';
    throw new FilebusError('ERR_FILEBUS_BAD_PATH', `${paths.lock} is ${what}, not the bus's lock file`, { path: paths.lock });
  }
  // Planted before first use, another user's lock file could be replaced
  // mid-stream, and processes would then lock different files.
  if (lockStat) requireTrusted(paths.lock, lockStat, 'file', trust, 'lock file');
  if (fileStat && role.replacesFile && !options.takeOver && !lockStat && !showsBus(paths)) {
    throw new FilebusError('ERR_FILEBUS_NOT_A_BUS',
      `${paths.file} exists but is not a bus (no ${path.basename(paths.lock)}, no registration, no segments), and would be ${role.createsDirectory ? 'replaced' : 'deleted'}: pass --take-over (library: takeOver: true) to use it anyway`,
      { path: paths.file });
  }
  if (role.writes) {
    try {
      fs.accessSync(paths.dir, fs.constants.W_OK | fs.constants.X_OK);
    } catch (error) {
      throw new FilebusError('ERR_FILEBUS_DIRECTORY', `cannot write to directory ${paths.dir}: ${describe(error)}`, { path: paths.dir, cause: error });
    }
  }
}

/**
 * mkdir -p, giving each directory it creates the bus's mode. Never inside
 * a directory every user may write without the sticky bit: the new
 * directory could be swapped for another user's before the bus is in it.
 */
function makeParents(dir: string, mode: FileMode): void {
  const missing: string[] = [];
  let d = dir;
  for (; !fs.existsSync(d); d = path.dirname(d)) missing.unshift(d);
  checkSharedDirectory(d, fs.statSync(d));
  for (const m of missing) {
    try {
      createDirectory(m, mode);
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw error;
    }
  }
}

/** Whether anything beside FILE says a bus has been here (FILE.lock was looked at already). */
function showsBus(paths: BusPaths): boolean {
  return [paths.strategyMarker, paths.lockDir, producersDir(paths), segmentsDir(paths), consumersDir(paths)].some((p) => lstatOrUndefined(p) !== undefined);
}

function lstatOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}

function statOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') {
      throw new FilebusError('ERR_FILEBUS_DIRECTORY', `cannot use ${p}: a parent is not a directory`, { path: p, cause: error });
    }
    throw new FilebusError('ERR_FILEBUS_DIRECTORY', `cannot use ${p}: ${describe(error)}`, { path: p, cause: error });
  }
}

function describe(error: unknown): string {
  const code = errnoCode(error);
  switch (code) {
    case 'EACCES': case 'EPERM': return 'permission denied';
    case 'EROFS': return 'read-only file system';
    case 'ENOTDIR': return 'a parent is not a directory';
    case 'ENOSPC': return 'no space left on device';
    default: return code ?? String(error);
  }
}
