import fs from 'node:fs';
import { tryFlock } from './flock.js';
import { MKDIR_STALE_MS, MKDIR_UPDATE_MS } from './mkdir-lock.js';

/**
 * Whether the process that owns a file (a multicast cursor, a producer
 * registration) is still running, told apart in the bus's lock strategy:
 * - flock buses: the owner holds an exclusive flock on the file, which the
 *   kernel (or the file server) drops however the owner dies.
 * - mkdir buses, meant for file systems that do not share flock between
 *   hosts: the owner refreshes the file's mtime every MKDIR_UPDATE_MS; a
 *   file not touched for MKDIR_STALE_MS belongs to a process that is gone,
 *   the same rule and timeout as the mkdir lock itself.
 */
export interface Liveness {
  /**
   * Claims the open file `fd` for this process. Returns undefined when a
   * live process holds it. `created`: this process has just created the
   * file, so nobody else can hold it yet (a fresh mtime is no sign of
   * another owner).
   */
  hold(fd: number, path: string, options?: { readonly created?: boolean }): Holding | undefined;
  /** Whether a live process holds the open file `fd` (another process's, or a file just opened to look). */
  isHeld(fd: number, path: string): boolean;
  /**
   * The holder is known at once by an flock the kernel drops however it
   * dies, so a file can be held for as long as it is in use (a taken
   * back-pressure chunk), not only announced.
   */
  readonly byFlock: boolean;
  /**
   * How soon after a look a waiting process gains by looking again for an
   * owner's death: at once for flock, not before a heartbeat goes stale.
   */
  readonly recheckMs: number;
}

export interface Holding {
  /** Stops claiming; call before closing the descriptor. */
  release(): void;
}

const NOTHING_TO_RELEASE: Holding = { release() {} };

export const flockLiveness: Liveness = {
  byFlock: true,
  recheckMs: 10,
  hold(fd, path) {
    return tryFlock(fd, 'exclusive', path) ? NOTHING_TO_RELEASE : undefined;
  },
  isHeld(fd, path) {
    return !tryFlock(fd, 'shared', path);
  },
};

export const heartbeatLiveness: Liveness = {
  byFlock: false,
  recheckMs: MKDIR_UPDATE_MS,
  hold(fd, path, options) {
    if (options?.created !== true && heartbeatLiveness.isHeld(fd, path)) return undefined;
    const touch = (): void => {
      const now = new Date();
      try { fs.futimesSync(fd, now, now); } catch { /* the next beat tries again; a stale file costs a takeover, not data */ }
    };
    touch();
    const timer = setInterval(touch, MKDIR_UPDATE_MS);
    timer.unref();
    return { release: () => clearInterval(timer) };
  },
  isHeld(fd) {
    // A clock ahead of ours makes a future mtime: that counts as live.
    return fs.fstatSync(fd).mtimeMs > Date.now() - MKDIR_STALE_MS;
  },
};
