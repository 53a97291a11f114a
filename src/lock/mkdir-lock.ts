import fs from 'node:fs';
import { FilebusError, abortError, errnoCode, ioError } from '../errors.js';
import { sleep } from '../util/abortable.js';
import { createDirectory, type FileMode } from '../util/permissions.js';
import { directoryTrust, parentOf, requireTrusted } from '../util/trust.js';
import type { BusLock, LockPaths } from './bus-lock.js';

/**
 * A held lock whose directory has not been refreshed for this long is taken
 * to belong to a process that died, and is taken over. Hosts' clocks must
 * agree to well within this (NTP), since one host's mtime is judged by
 * another's clock.
 */
export const MKDIR_STALE_MS = 10_000;
/** How often a holder refreshes the mtime of what it holds (five chances before it looks stale). */
export const MKDIR_UPDATE_MS = 2_000;
/** Longest pause between two attempts on a contended lock. */
const MAX_RETRY_MS = 50;

type Release = () => Promise<void>;
type Callback<T = void> = (error: NodeJS.ErrnoException | null, value?: T) => void;
interface ProperLockfile {
  lock(file: string, options: Record<string, unknown>): Promise<Release>;
}

let library: Promise<ProperLockfile> | undefined;
/**
 * Loaded on first use: proper-lockfile installs exit and signal hooks
 * (signal-exit) and patches fs.close (graceful-fs) as soon as it is loaded,
 * which flock buses have no use for.
 */
function properLockfile(): Promise<ProperLockfile> {
  library ??= import('proper-lockfile').then((m) => (m.default ?? m) as unknown as ProperLockfile);
  return library;
}

/**
 * The mkdir strategy: the lock is the directory FILE.lock.d, created with
 * mkdir(2), which is atomic on every file system filebus supports,
 * including network ones whose clients do not share flock. proper-lockfile
 * creates it, refreshes its mtime every MKDIR_UPDATE_MS while it is held,
 * and removes it on release and on process exit (also on SIGINT and
 * SIGTERM, through the CLI's abort). A holder killed with SIGKILL leaves it
 * behind; it is stale MKDIR_STALE_MS after its last refresh and the next
 * acquirer removes it.
 *
 * Not `FILE.lock`, proper-lockfile's default name: that is the flock
 * strategy's (and the reference's) lock file.
 *
 * Two waiters that find the same stale directory must not both take over:
 * proper-lockfile would have each remove "the stale directory" by name, and
 * the second could remove the first one's fresh lock. Stale removal here
 * is done under a second directory, FILE.lock.d.stale, and only after
 * checking again that the lock is still stale.
 */
export class MkdirLock implements BusLock {
  readonly #paths: LockPaths;
  readonly #mode: FileMode;
  #release: Release | undefined;
  #releasing = false;
  #compromised: Error | undefined;
  #closed = false;
  /** proper-lockfile's fs: synchronous underneath, so release() is done when it returns. */
  readonly #fs: Record<string, unknown>;

  constructor(paths: LockPaths, mode: FileMode) {
    this.#paths = paths;
    this.#mode = mode;
    const sync = <T>(work: () => T, callback: Callback<T>): void => {
      let value: T;
      try {
        value = work();
      } catch (error) {
        return callback(error as NodeJS.ErrnoException);
      }
      callback(null, value);
    };
    this.#fs = {
      mkdir: (p: string, callback: Callback) => sync(() => createDirectory(p, this.#mode), callback),
      // Asked only when the lock is taken: a lock directory another user made
      // (in a sticky directory, whenever the lock is free) would be removed
      // by nobody but root, so it is refused rather than waited on.
      stat: (p: string, callback: Callback<fs.Stats>) => sync(() => trustedLockDir(p), callback),
      utimes: (p: string, atime: Date, mtime: Date, callback: Callback) => sync(() => fs.utimesSync(p, atime, mtime), callback),
      realpath: (p: string, callback: Callback<string>) => sync(() => fs.realpathSync(p), callback),
      rmdir: (p: string, callback: Callback) => sync(() => (this.#releasing ? fs.rmdirSync(p) : this.#removeStale(p)), callback),
      rmdirSync: (p: string) => fs.rmdirSync(p),
    };
  }

  async acquire(signal?: AbortSignal): Promise<void> {
    if (this.#closed) throw new FilebusError('ERR_FILEBUS_IO', `the lock ${this.#paths.lockDir} is closed`, { path: this.#paths.lockDir });
    if (this.#compromised) throw this.#lostError();
    const lib = await properLockfile();
    let pause = 1;
    for (;;) {
      if (signal?.aborted) throw abortError();
      try {
        this.#release = await lib.lock(this.#paths.file, {
          lockfilePath: this.#paths.lockDir,
          realpath: false,
          stale: MKDIR_STALE_MS,
          update: MKDIR_UPDATE_MS,
          retries: 0,
          fs: this.#fs,
          onCompromised: (error: Error) => {
            this.#compromised = error;
            this.#release = undefined;
          },
        });
        return;
      } catch (error) {
        if (error instanceof FilebusError) throw error;
        const code = errnoCode(error);
        if (code === 'EISDIR' || code === 'ENOTDIR' || code === 'EEXIST') {
          throw new FilebusError('ERR_FILEBUS_BAD_PATH', `${this.#paths.lockDir} is not the bus's lock directory`, { path: this.#paths.lockDir });
        }
        if (code !== 'ELOCKED') throw ioError('lock', this.#paths.lockDir, error);
      }
      await sleep(pause, signal);
      pause = Math.min(pause * 2, MAX_RETRY_MS);
    }
  }

  release(): void {
    const release = this.#release;
    if (!release) return;
    this.#release = undefined;
    this.#releasing = true;
    try {
      // Settles later, but the directory is already gone: #fs is synchronous.
      release().catch(() => {});
    } finally {
      this.#releasing = false;
    }
  }

  close(): void {
    this.release();
    this.#closed = true;
  }

  #lostError(): FilebusError {
    return new FilebusError('ERR_FILEBUS_IO',
      `lost the lock ${this.#paths.lockDir}: it was not refreshed for ${MKDIR_STALE_MS / 1000} s and another process took it over`,
      { path: this.#paths.lockDir, cause: this.#compromised });
  }

  /**
   * proper-lockfile found the lock stale and wants it gone. Only one
   * process at a time may do that (FILE.lock.d.stale), and only if the lock
   * is still stale now: another process may have just taken it over.
   * Throws ELOCKED otherwise, which proper-lockfile reports and acquire()
   * answers by trying again later.
   */
  #removeStale(lockDir: string): void {
    const guard = this.#paths.lockGuard;
    try {
      createDirectory(guard, this.#mode);
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw error;
      // A process killed during a takeover leaves the guard behind.
      if ((ageMs(guard) ?? 0) > MKDIR_STALE_MS) {
        try { fs.rmdirSync(guard); } catch { /* another process removed it */ }
      }
      throw locked(lockDir);
    }
    try {
      const age = ageMs(lockDir);
      if (age === undefined) return;
      if (age <= MKDIR_STALE_MS) throw locked(lockDir);
      fs.rmdirSync(lockDir);
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
    } finally {
      try { fs.rmdirSync(guard); } catch { /* removed as stale by another process */ }
    }
  }
}

/** Milliseconds since the last refresh of `dir`, or undefined when it is gone. */
function ageMs(dir: string): number | undefined {
  try {
    return Date.now() - fs.lstatSync(dir).mtimeMs;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

function locked(lockDir: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${lockDir} is held`), { code: 'ELOCKED' });
}

function trustedLockDir(p: string): fs.Stats {
  const st = fs.lstatSync(p);
  requireTrusted(p, st, 'directory', directoryTrust(parentOf(p)), 'lock directory');
  return st;
}
