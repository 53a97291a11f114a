import fs from 'node:fs';
import { errnoCode, ioError } from '../errors.js';
import type { Liveness } from '../lock/liveness.js';
import type { FileSystemInfo } from '../watch/file-system.js';
import { fileExists, openChunk, removeQuietly, type OpenedChunk } from '../wire/chunk-file.js';
import type { BusPaths } from '../wire/layout.js';
import { chunkOnServer, claimChunk, listed } from '../wire/server-view.js';

/**
 * How this process sees a bus: the one place that knows whether the file
 * system is local or shared with other hosts, and whether its lock
 * strategy's flock can be trusted. Engines ask the view and never branch
 * on the file system or the strategy themselves.
 *
 * Local: this kernel's view of the directory is the truth, and a flock
 * says at once whether its holder still runs. Remote (a network or FUSE
 * file system): another host may change FILE behind this host's caches,
 * so names are asked of the server's listing and chunks are reached
 * through a link it makes (wire/server-view.ts, docs/distributed.md).
 */
export interface BusView {
  /** Other hosts change the bus behind this host's caches. */
  readonly remote: boolean;
  /**
   * A hint for waits: whether a chunk is at FILE now. Remote: whether the
   * server lists FILE, which may be a moment old.
   */
  hasChunk(): boolean;
  /**
   * Under the lock: whether a chunk is at FILE, asked of the server where
   * the caches may be stale. Anything unclear counts as present, since a
   * wrong "absent" would let a back-pressure producer replace a chunk no
   * one has taken.
   */
  holdsChunk(): boolean;
  /**
   * Under the lock: opens the chunk at FILE, or undefined when there is
   * none. `release` is called once the chunk is done with, after FILE
   * itself is removed (remote: the extra name it was claimed through).
   */
  claimChunk(): ViewedChunk | undefined;
  /** Whether a lossy consumer may open FILE now: remote, only while the server lists it, so the open cannot follow a stale entry. */
  mayOpenFile(): boolean;
  /** Whether FILE is still the file `stamp` describes; remote: never taken on trust, another host may have reused the inode. */
  fileUnchanged(stamp: FileStamp): boolean;
  /** A delivered back-pressure chunk's file may be kept as the spare (wire/spare-chunk.ts): never where another host may hold it open. */
  readonly keepsSpare: boolean;
  /**
   * Back-pressure consumers may take FILE by renaming it and hold it by
   * flock (wire/taken-chunk.ts). Not where flock is not the bus's lock
   * (--lock mkdir) nor across hosts: there the reference's order is kept.
   */
  readonly takesByRename: boolean;
  /**
   * How soon a multicast producer waiting on a slow consumer looks again
   * whether it died (a death makes no file event, only its flock goes):
   * often where that look is a local flock, only every --sleep-interval
   * where it is a round trip per cursor or liveness is a heartbeat.
   */
  readonly livenessRecheckMs: number;
}

export interface ViewedChunk extends OpenedChunk {
  release(): void;
}

/** What a producer remembers of FILE to tell later whether it changed. */
export interface FileStamp {
  readonly dev: bigint;
  readonly ino: bigint;
  readonly ctimeNs: bigint;
}

/** The view of a bus on `fileSystem`, whose owners' liveness the lock strategy tells as `liveness` says. */
export function createBusView(paths: BusPaths, fileSystem: FileSystemInfo, liveness: Liveness): BusView {
  return fileSystem.network ? remoteView(paths) : localView(paths, liveness);
}

function localView(paths: BusPaths, liveness: Liveness): BusView {
  return {
    remote: false,
    hasChunk: () => fileExists(paths.file),
    holdsChunk: () => fileExists(paths.file),
    claimChunk() {
      const opened = openChunk(paths.file);
      return opened && { ...opened, release() {} };
    },
    mayOpenFile: () => true,
    fileUnchanged(stamp) {
      const st = lstatOrUndefined(paths.file);
      return st !== undefined && st.dev === stamp.dev && st.ino === stamp.ino && st.ctimeNs === stamp.ctimeNs;
    },
    keepsSpare: true,
    takesByRename: liveness.byFlock,
    livenessRecheckMs: liveness.recheckMs,
  };
}

function remoteView(paths: BusPaths): BusView {
  return {
    remote: true,
    hasChunk: () => listed(paths.dir, paths.base),
    holdsChunk: () => chunkOnServer(paths),
    claimChunk() {
      const claimed = claimChunk(paths);
      return claimed && { fd: claimed.fd, id: claimed.id, size: claimed.size, release: () => removeQuietly(claimed.claim) };
    },
    mayOpenFile: () => listed(paths.dir, paths.base),
    fileUnchanged: () => false,
    keepsSpare: false,
    takesByRename: false,
    livenessRecheckMs: Infinity,
  };
}

function lstatOrUndefined(file: string): fs.BigIntStats | undefined {
  try {
    return fs.lstatSync(file, { bigint: true });
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw ioError('stat', file, error);
  }
}
