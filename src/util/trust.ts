import fs from 'node:fs';
import { FilebusError } from '../errors.js';

/**
 * Whose files a bus accepts. Another user on the same machine may plant
 * names beside a bus in a shared directory such as /tmp (symlinks, files,
 * directories, FIFOs), and may flock any file they can open. A name is
 * accepted only when it is the expected type (never a symbolic link: every
 * open uses O_NOFOLLOW, every stat is an lstat or an fstat) and its owner
 * is trusted: this process's effective uid, root, or the owner of the
 * directory holding it (who can replace anything there anyway).
 *
 * In a directory that is neither sticky nor writable by every user, anyone
 * who can create a name can also rename or remove every other one, so the
 * owner of an entry says nothing about who may have planted it: every
 * owner is accepted there (a group-shared bus directory, mode 2770, works
 * for all its members). A directory writable by every user and not sticky
 * is refused outright (checkSharedDirectory): anyone could swap every file.
 */
export interface DirectoryTrust {
  readonly owner: number;
  /** Not sticky and not world-writable: ownership of entries tells nothing, so every owner passes. */
  readonly anyOwner: boolean;
}

const EUID = typeof process.geteuid === 'function' ? process.geteuid() : -1;
const S_ISVTX = 0o1000;
const S_IWOTH = 0o002;

/** Per directory path, for the life of the process: looked up once, so checks on the hot path cost no syscall. */
const known = new Map<string, DirectoryTrust>();

/** Records (from a stat of it) or looks up (one stat, then cached) the trust of entries of `dir`. */
export function directoryTrust(dir: string, st?: { uid: number; mode: number }): DirectoryTrust {
  if (!st) {
    const cached = known.get(dir);
    if (cached) return cached;
    st = fs.statSync(dir);
  }
  const trust = { owner: st.uid, anyOwner: (st.mode & (S_ISVTX | S_IWOTH)) === 0 };
  known.set(dir, trust);
  return trust;
}

/** The directory part of an absolute path, without path.dirname's normalizing (it runs per chunk). */
export function parentOf(file: string): string {
  const slash = file.lastIndexOf('/');
  return slash <= 0 ? '/' : file.slice(0, slash);
}

export function ownerTrusted(uid: number | bigint, trust: DirectoryTrust): boolean {
  const u = Number(uid);
  return trust.anyOwner || u === EUID || u === 0 || u === trust.owner;
}

type Kind = 'file' | 'directory';

/** Why `st` (from lstat or fstat of an entry of a directory with `trust`) is not an acceptable `kind`, or undefined when it is. */
export function distrust(st: fs.Stats | fs.BigIntStats, kind: Kind, trust: DirectoryTrust): string | undefined {
  if (st.isSymbolicLink()) return 'is a symbolic link';
  if (!ownerTrusted(st.uid, trust)) return `belongs to ${userName(Number(st.uid))}, not to this bus's user`;
  if (kind === 'file' && !st.isFile()) return st.isDirectory() ? 'is a directory, not a regular file' : 'is not a regular file';
  if (kind === 'directory' && !st.isDirectory()) return 'is not a directory';
  return undefined;
}

/** Refuses `path` unless `st` shows an acceptable `kind` (distrust), with one line naming it and its owner. */
export function requireTrusted(path: string, st: fs.Stats | fs.BigIntStats, kind: Kind, trust: DirectoryTrust, what: string): void {
  const why = distrust(st, kind, trust);
  if (why !== undefined) throw untrusted(path, `${what} ${path} ${why}`);
}

export function untrusted(path: string, message: string): FilebusError {
  return new FilebusError('ERR_FILEBUS_UNTRUSTED', `${message}: refusing it (remove it, or use a directory only this bus's users can write)`, { path });
}

/**
 * Refuses a directory every user may write that lacks the sticky bit:
 * anyone could rename any bus file away and put their own in its place.
 */
export function checkSharedDirectory(dir: string, st: { mode: number }): void {
  if ((st.mode & S_IWOTH) !== 0 && (st.mode & S_ISVTX) === 0) {
    throw new FilebusError('ERR_FILEBUS_UNTRUSTED',
      `${dir} is writable by every user and not sticky, so anyone could replace the bus's files: use a private directory, or chmod +t ${dir}`,
      { path: dir });
  }
}

/** `user NAME (uid N)`, from /etc/passwd when it knows the uid; only ever called for an error message. */
function userName(uid: number): string {
  try {
    for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const fields = line.split(':');
      if (fields.length > 2 && fields[2] !== "" && Number(fields[2]) === uid && fields[0]) return `user ${fields[0]} (uid ${uid})`;
    }
  } catch { /* no passwd file: the number will do */ }
  return `uid ${uid}`;
}

/**
 * A directory of the bus (FILE.segments/, FILE.consumers/,
 * FILE.producers/), from an lstat: refused unless a directory of a user the
 * bus trusts; then recorded as the trust of its own entries.
 */
export function checkBusDirectory(dir: string, st: fs.Stats, paths: { readonly dir: string }): void {
  if (!st.isDirectory() && !st.isSymbolicLink() && ownerTrusted(st.uid, directoryTrust(paths.dir))) {
    throw new FilebusError('ERR_FILEBUS_BAD_PATH', `${dir} is not a directory`, { path: dir });
  }
  requireTrusted(dir, st, 'directory', directoryTrust(paths.dir), 'bus directory');
  directoryTrust(dir, st);
}
