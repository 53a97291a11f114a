import fs from 'node:fs';
import { FilebusError, errnoCode, ioError, isStale } from '../errors.js';
import { closeQuietly, isGone, removeQuietly, type ChunkIdentity } from './chunk-file.js';
import { tempPath, type BusPaths } from './layout.js';
import { listDirectory } from '../util/list-directory.js';
import { directoryTrust, requireTrusted } from '../util/trust.js';

/**
 * Reading what the file server holds, not what this host's client cached.
 *
 * On a network file system a host may keep resolving FILE to the chunk it
 * last saw for up to its attribute/entry cache timeout (about a second with
 * GlusterFS's defaults), and may serve that chunk's bytes from its caches
 * even after another host removed it: a back-pressure consumer would then
 * deliver a chunk twice, and a producer would wait a second for FILE to go.
 * Two operations reach the server whatever the caches hold
 * (docs/distributed-findings.md, measured on GlusterFS):
 * - readdir(3) lists the names the server has, and refreshes the client's
 *   entries for them;
 * - link(2) of FILE to a new name: the server links the chunk it holds at
 *   FILE, or fails. A cached entry naming a chunk the server no longer has
 *   makes the server answer ESTALE, and the kernel then retries the call
 *   after looking FILE up afresh. (The GlusterFS client sometimes answers
 *   EIO instead, logging "fuse_loc_fill() failed ... LINK (null)": the
 *   chunk its cache names is gone. The kernel does not retry that.)
 */

/** link(2)'s errors that mean the chunk this host's cache names for FILE no longer exists. */
function gone(error: unknown): boolean {
  return errnoCode(error) === 'ENOENT' || isStale(error) || errnoCode(error) === 'EIO';
}

/**
 * Links the chunk the server holds at FILE to a fresh temporary name of
 * this process, and returns that name; undefined when the server holds
 * none there (gone()).
 */
function linkFromServer(paths: BusPaths): string | undefined {
  const name = tempPath(paths);
  try {
    fs.linkSync(paths.file, name);
  } catch (error) {
    if (gone(error)) return undefined;
    throw ioError('link', paths.file, error);
  }
  return name;
}

/** Whether the server lists `name` in `dir` (a hint for waits: a listing can be a moment old). */
export function listed(dir: string, name: string): boolean {
  return listDirectory(dir).includes(name);
}

/** The chunk the server holds at FILE, through a name of its own. */
export interface ClaimedChunk {
  readonly fd: number;
  readonly id: ChunkIdentity;
  readonly size: number;
  /** The extra name: remove it (removeQuietly) once done, after FILE itself. */
  readonly claim: string;
}

/**
 * Gives the chunk the server holds at FILE another name, and opens it by
 * that name, which this host has never looked up and so cannot have
 * cached. Undefined when the server has no FILE. The caller holds the bus
 * lock, so FILE cannot change until it lets go; the extra name is a
 * temporary name of this process, which a producer on this host removes if
 * the process dies holding it.
 *
 * The link alone is not enough: when this host's cache still names a chunk
 * another host's consumer has just taken, and the server still keeps that
 * chunk for a descriptor not yet closed there, the link brings it back
 * under the new name. So the directory is listed first (which refreshes
 * this host's entry for FILE), and the claimed file must be the one FILE
 * names after that; otherwise nothing is claimed.
 */
export function claimChunk(paths: BusPaths): ClaimedChunk | undefined {
  if (!listed(paths.dir, paths.base)) return undefined;
  // Nothing linked: nothing is claimed, and the caller waits and looks
  // again. A brick that really fails fails the listing too (listed()),
  // which is an error.
  const claim = linkFromServer(paths);
  if (claim === undefined) return undefined;
  let fd: number;
  try {
    fd = fs.openSync(claim, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (error) {
    removeQuietly(claim);
    if (errnoCode(error) === 'ENOENT' || isStale(error)) return undefined;
    throw ioError('open', paths.file, error);
  }
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    if (!st.isFile()) throw new FilebusError('ERR_FILEBUS_BAD_PATH', `${paths.file} is not a regular file`, { path: paths.file });
    // A FILE another user put there is not a chunk: as when taking it locally (taken-chunk.ts).
    requireTrusted(paths.file, st, 'file', directoryTrust(paths.dir), 'bus file');
    // One name only: the linked file was no longer FILE (an unlinked file
    // a client still had open), so the server holds no chunk at FILE now.
    // Another file at FILE: the link followed an old entry.
    const named = fileIdentity(paths.file);
    if (st.nlink < 2n || named === undefined || named.ino !== st.ino || named.dev !== st.dev) {
      closeQuietly(fd);
      removeQuietly(claim);
      return undefined;
    }
    return { fd, id: { dev: st.dev, ino: st.ino }, size: Number(st.size), claim };
  } catch (error) {
    closeQuietly(fd);
    removeQuietly(claim);
    if (error instanceof FilebusError) throw error;
    if (isGone(error)) return undefined;
    throw ioError('read', paths.file, error);
  }
}

function fileIdentity(file: string): ChunkIdentity | undefined {
  try {
    const st = fs.lstatSync(file, { bigint: true });
    return { dev: st.dev, ino: st.ino };
  } catch (error) {
    if (isGone(error)) return undefined;
    throw ioError('stat', file, error);
  }
}

/**
 * Whether the server holds a chunk at FILE, asked by linking it to a
 * temporary name (removed at once). Call under the bus lock. When the link
 * only says that the chunk this host's cache names is gone (ESTALE, EIO),
 * the server's listing decides; a wrong "absent" would let a producer
 * replace a chunk nobody has taken, so anything unclear counts as present.
 */
export function chunkOnServer(paths: BusPaths): boolean {
  const probe = tempPath(paths);
  try {
    fs.linkSync(paths.file, probe);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return false;
    if (gone(error)) return listed(paths.dir, paths.base);
    throw ioError('link', paths.file, error);
  }
  removeQuietly(probe);
  return true;
}

/**
 * The identity of the file the server holds at FILE (undefined if none),
 * through a temporary link, removed at once: a stat of FILE itself could
 * describe a file this host cached before another host replaced it.
 */
export function identityOnServer(paths: BusPaths): ChunkIdentity | undefined {
  const probe = linkFromServer(paths);
  if (probe === undefined) return undefined;
  try {
    const st = fs.lstatSync(probe, { bigint: true });
    return { dev: st.dev, ino: st.ino };
  } catch (error) {
    if (isGone(error)) return undefined;
    throw ioError('stat', paths.file, error);
  } finally {
    removeQuietly(probe);
  }
}
