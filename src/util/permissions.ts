import fs from 'node:fs';
import { FilebusError } from '../errors.js';

/**
 * The permission bits of everything a bus creates. Undefined: the usual
 * 0666/0777 less the umask. A number (`--file-mode 0600`): exactly those bits
 * on files, and on directories the same plus search (x) wherever read (r)
 * is granted. Files are created owner-only and then given their mode, so a
 * file is never, even for an instant, more open than asked.
 *
 * Modes are only ever changed through a descriptor (fchmod), never by path:
 * a path can be swapped for a symlink between creating and chmod-ing it.
 */
export type FileMode = number | undefined;

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_CREAT } = fs.constants;
const EUID = typeof process.geteuid === 'function' ? process.geteuid() : -1;

export function directoryMode(mode: number): number {
  return mode | ((mode & 0o444) >> 2);
}

/** open(2) with O_CREAT, then the exact mode when one is set. */
export function createFile(path: string, flags: number, mode: FileMode): number {
  return create(path, flags, mode === undefined ? 0o666 : 0o600, mode);
}

/**
 * Like createFile, for the files that are flocked to say "held": the lock
 * file, cursors, producer registrations. Anyone who can open a file can
 * flock it, so these never grant 'other' anything (a read-only user could
 * otherwise hold FILE.lock and stall every process, or make a dead cursor
 * look alive). Group bits follow the bus's mode (the umask's when unset).
 */
export function createPrivateFile(path: string, flags: number, mode: FileMode): number {
  return create(path, flags, mode === undefined ? 0o660 : 0o600, mode === undefined ? undefined : mode & 0o770);
}

function create(path: string, flags: number, createMode: number, exact: number | undefined): number {
  const fd = fs.openSync(path, flags | O_CREAT, createMode);
  if (exact !== undefined) {
    try {
      fs.fchmodSync(fd, exact);
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
  }
  return fd;
}

/**
 * mkdir(2) of one directory, then the exact mode when one is set. EEXIST is
 * thrown as usual. The mode is set through a descriptor opened with
 * O_DIRECTORY|O_NOFOLLOW and checked to be a directory of this user: in a
 * directory others can write, the new one could be renamed away and a
 * symlink put in its place before the chmod, and a chmod by path would then
 * change the mode of whatever the symlink names.
 */
export function createDirectory(path: string, mode: FileMode): void {
  fs.mkdirSync(path, mode === undefined ? 0o777 : 0o700);
  if (mode === undefined) return;
  let fd: number;
  try {
    fd = fs.openSync(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  } catch (error) {
    throw replaced(path, error);
  }
  try {
    const st = fs.fstatSync(fd);
    // Root is exempt: NFS maps its files to another owner (root_squash), and
    // a directory someone swapped in is refused by the caller's trust check.
    if (!st.isDirectory() || (EUID !== 0 && st.uid !== EUID)) throw replaced(path);
    fs.fchmodSync(fd, directoryMode(mode));
  } finally {
    fs.closeSync(fd);
  }
}

function replaced(path: string, cause?: unknown): FilebusError {
  return new FilebusError('ERR_FILEBUS_UNTRUSTED',
    `${path} was replaced by something else right after filebus created it: another user can write its parent directory; use a private directory`,
    { path, cause });
}
