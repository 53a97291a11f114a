import fs from 'node:fs';
import { flock, flockSync } from 'fs-ext';
import { FilebusError, abortError, errnoCode, ioError } from '../errors.js';
import { createPrivateFile, type FileMode } from '../util/permissions.js';
import { directoryTrust, parentOf, requireTrusted } from '../util/trust.js';
import type { BusLock } from './bus-lock.js';

/**
 * Opens the lock file, creating it with the bus's mode if it does not exist
 * yet; `created` runs after creating it, and may throw to refuse the bus.
 */
export function openLockFile(path: string, mode: FileMode, created?: () => void): number {
  try {
    return fs.openSync(path, O_RDWR | O_NOFOLLOW);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
  }
  let fd: number;
  try {
    fd = createPrivateFile(path, O_RDWR | O_EXCL | O_NOFOLLOW, mode);
  } catch (error) {
    // Someone else created it in between: use theirs.
    if (errnoCode(error) === 'EEXIST') return fs.openSync(path, O_RDWR | O_NOFOLLOW);
    throw error;
  }
  try {
    created?.();
  } catch (error) {
    fs.closeSync(fd);
    throw error;
  }
  return fd;
}

const { O_RDWR, O_RDONLY, O_CREAT, O_NOFOLLOW, O_EXCL } = fs.constants;

/**
 * An exclusive flock(2) on FILE.lock, the reference's lock: it interoperates
 * with the Python and bash filebus, and the kernel drops it when the holder
 * dies, so a crashed process never wedges the bus.
 *
 * Each instance opens its own descriptor: flock belongs to the open file
 * description, so two instances in one process exclude each other too.
 */
export class FlockLock implements BusLock {
  readonly #path: string;
  readonly #mode: FileMode;
  readonly #created: (() => void) | undefined;
  #fd: number | undefined;
  #held = false;
  #waiting: Promise<void> | undefined;

  /** `created` runs when this lock creates FILE.lock, and may throw to refuse the bus. */
  constructor(path: string, mode: FileMode, created?: () => void) {
    this.#path = path;
    this.#mode = mode;
    this.#created = created;
  }

  async acquire(signal?: AbortSignal): Promise<void> {
    // A wait abandoned by an earlier abort is still queued in the kernel; let
    // it arrive (it unlocks itself) before queueing another.
    while (this.#waiting) await this.#waiting.catch(() => {});
    if (signal?.aborted) throw abortError();
    const fd = this.#open();
    // Uncontended is the common case: one non-blocking syscall, no thread hop.
    try {
      flockSync(fd, 'exnb');
      this.#held = true;
      return;
    } catch (error) {
      const code = errnoCode(error);
      if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK') throw ioError('lock', this.#path, error);
    }
    // Contended: block in libuv's thread pool. That wait cannot be
    // interrupted, so an abort abandons it and it gives the lock back on arrival.
    let abandoned = false;
    const wait = new Promise<void>((resolve, reject) => {
      flock(fd, 'ex', (error) => {
        this.#waiting = undefined;
        if (error) return reject(ioError('lock', this.#path, error));
        if (abandoned) this.#unlock();
        resolve();
      });
    });
    this.#waiting = wait;
    if (!signal) {
      await wait;
      this.#held = true;
      return;
    }
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => { abandoned = true; reject(abortError()); };
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([wait, aborted]);
      this.#held = true;
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  release(): void {
    if (!this.#held) return;
    this.#held = false;
    this.#unlock();
  }

  close(): void {
    this.release();
    if (this.#fd !== undefined && this.#waiting === undefined) {
      try { fs.closeSync(this.#fd); } catch { /* already closed */ }
      this.#fd = undefined;
    }
  }

  #unlock(): void {
    if (this.#fd === undefined) return;
    try { flockSync(this.#fd, 'un'); } catch { /* closing the descriptor drops it anyway */ }
  }

  #open(): number {
    if (this.#fd !== undefined) return this.#fd;
    // O_NOFOLLOW: a symlink planted at FILE.lock must not make us create or
    // truncate a file elsewhere. Read-only is enough for flock when the lock
    // file belongs to another user.
    try {
      this.#fd = openLockFile(this.#path, this.#mode, this.#created);
    } catch (error) {
      if (error instanceof FilebusError) throw error;
      const code = errnoCode(error);
      if (code === 'EISDIR' || code === 'ELOOP') {
        throw new FilebusError('ERR_FILEBUS_BAD_PATH', `${this.#path} is ${code === 'EISDIR' ? 'a directory' : 'a symbolic link'}, not the bus's lock file`, { path: this.#path });
      }
      if (code !== 'EACCES') throw ioError('open lock file', this.#path, error);
      try {
        this.#fd = fs.openSync(this.#path, O_RDONLY | O_NOFOLLOW);
      } catch (again) {
        throw ioError('open lock file', this.#path, again);
      }
    }
    // Checked on the descriptor, once per process: a lock file another user
    // planted (or swapped in after the path was checked) could be replaced
    // at any time, and processes would then lock different files.
    try {
      const st = fs.fstatSync(this.#fd);
      requireTrusted(this.#path, st, 'file', directoryTrust(parentOf(this.#path)), 'lock file');
      withdrawOthers(this.#fd, st);
    } catch (error) {
      fs.closeSync(this.#fd);
      this.#fd = undefined;
      throw error;
    }
    return this.#fd;
  }
}

/**
 * A lock file of ours that every user may read (made by the reference, or by
 * filebus before lock files lost their 'other' bits) lets any user flock it
 * and stall the bus: take those bits away, on the descriptor. Lock files
 * filebus makes never have them (util/permissions.ts, createPrivateFile).
 */
function withdrawOthers(fd: number, st: fs.Stats): void {
  if ((st.mode & 0o007) === 0 || st.uid !== process.geteuid?.()) return;
  try {
    fs.fchmodSync(fd, st.mode & 0o770);
  } catch { /* a read-only descriptor on a file we cannot change: leave it */ }
}

/**
 * One non-blocking flock(2) attempt on an open descriptor: true when taken,
 * false when another open file description holds a conflicting lock.
 * Consumers hold their cursor files this way, so a cursor whose lock can be
 * taken belongs to a process that is gone.
 */
export function tryFlock(fd: number, kind: 'shared' | 'exclusive', path: string): boolean {
  try {
    flockSync(fd, kind === 'shared' ? 'shnb' : 'exnb');
    return true;
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return false;
    throw ioError('lock', path, error);
  }
}
