import fs from 'node:fs';
import { childPath, parseRecentName, recentName, type RecentRef } from '../wire/layout.js';
import { closeQuietly, openChunk, openRingEntry, readChunk, sameChunk, type ChunkIdentity } from '../wire/chunk-file.js';
import { directoryTrust, distrust } from '../util/trust.js';
import { listRecent } from '../wire/recent-chunks.js';
import type { ReadBuffer } from '../util/read-buffer.js';
import type { ChunkSource } from './contracts.js';
import type { Bus } from './open-bus.js';

/** Descriptors of the chunks emitted last, kept open (see lossyChunks). */
const REMEMBERED = 16;

/**
 * Lossy: emit each chunk published from now on, the current one first.
 *
 * Chunks published by our producers come from the catch-up ring
 * (wire/recent-chunks.ts), in sequence order, so a consumer a few chunks
 * behind still gets them all. FILE itself is read when it is a chunk the
 * ring does not have: a reference producer's, or the newest once the ring
 * has been removed. A chunk is known by (dev, ino), and the descriptors of
 * the last few emitted stay open: while a file is open its inode number
 * cannot be reused, so "already emitted" is never a recycled inode.
 *
 * No lock is taken: FILE and ring entries are only ever replaced or
 * removed whole, so an open descriptor always holds one whole chunk.
 */
export async function* lossyChunks(bus: Bus, into: ReadBuffer): ChunkSource {
  const { paths, options, signal } = bus;
  const pending = new Set<number>();
  // Ring entries up to lastSeq are handled. The first listing skips what is
  // already there: a consumer starts with the current chunk, read from FILE.
  let lastSeq: number | undefined;
  // Names of entries still to come wake the consumer; the producer's
  // deletions of old entries do not.
  // A watcher that names nothing (polling, chokidar): every wake-up then costs a listing.
  const watcher = await bus.watchFile({
    wanted: (name) => (parseRecentName(paths, name)?.seq ?? -1) > (lastSeq ?? -1),
    onName: (name) => {
      const ref = parseRecentName(paths, name);
      if (ref) pending.add(ref.seq);
    },
  });
  // Ring names another user planted: never opened twice, never numbering anything.
  const ignored = new Set<number>();
  const emitted: Array<{ fd: number; id: ChunkIdentity }> = [];
  const seenBefore = (id: ChunkIdentity): boolean => emitted.some((e) => sameChunk(e.id, id));
  const remember = (opened: { fd: number; id: ChunkIdentity }): void => {
    emitted.push({ fd: opened.fd, id: opened.id });
    if (emitted.length > REMEMBERED) closeQuietly(emitted.shift()!.fd);
  };
  let list = true;
  // Before a chunk is taken from FILE the directory is listed once: if the
  // ring has entries this consumer has not seen yet (their events not
  // handled yet), those come first, and FILE is likely one of them.
  let listedFor: ChunkIdentity | undefined;
  try {
    for (;;) {
      const seen = watcher.generation;
      if (list) {
        list = false;
        const refs = listRecent(paths);
        if (lastSeq === undefined) lastSeq = newestTrusted(paths, refs, ignored);
        for (const ref of refs) if (ref.seq > lastSeq && !ignored.has(ref.seq)) pending.add(ref.seq);
      }
      const next = oldestAfter(pending, lastSeq ?? 0);
      if (next !== undefined) {
        pending.delete(next);
        if (ignored.has(next)) continue;
        const file = childPath(paths.dir, recentName(paths, next));
        const opened = openRingEntry(file);
        // Planted by someone else: skipped, and the ring goes on below and after it.
        if (opened === 'untrusted') {
          ignored.add(next);
          continue;
        }
        lastSeq = next;
        // Gone: the ring moved past it before we got here, a chunk missed.
        if (opened === 'gone') continue;
        const data = seenBefore(opened.id) ? undefined : readChunk(file, opened.fd, opened.size, into);
        if (data === undefined) {
          closeQuietly(opened.fd);
          continue;
        }
        remember(opened);
        if (data.length > 0) yield data;
        continue;
      }
      // On a network file system FILE is opened only while the server
      // lists it: the listing refreshes this host's cached entry, which
      // could otherwise show an old chunk for up to its cache timeout.
      const opened = lastSeq === undefined || !bus.view.mayOpenFile() ? undefined : openChunk(paths.file);
      if (opened && !seenBefore(opened.id)) {
        if (!sameChunk(listedFor, opened.id)) {
          listedFor = opened.id;
          closeQuietly(opened.fd);
          list = true;
          continue;
        }
        const data = readChunk(paths.file, opened.fd, opened.size, into);
        // Replaced by another host between the open and the read (ESTALE): look again.
        if (data === undefined) {
          closeQuietly(opened.fd);
          await watcher.changedSince(seen, options.sleepIntervalMs, signal);
          continue;
        }
        remember(opened);
        // FILE is also a ring entry when our producer published it: the
        // ring resumes after that entry, never before it. Ring numbers are
        // not the stream's order across producers (a producer that finds
        // the ring empty starts again at 1), so older entries that turn up
        // later would otherwise be emitted after this newer chunk.
        const seq = ringSeqOf(paths, opened.id);
        if (seq !== undefined) lastSeq = seq;
        // An empty FILE is a back-pressure end marker seen by an eavesdropper: no data.
        if (data.length > 0) yield data;
        continue;
      }
      if (opened) closeQuietly(opened.fd);
      await watcher.changedSince(seen, options.sleepIntervalMs, signal);
      // Nothing named it (polling, chokidar, or a lost event): look at the directory.
      if (watcher.generation === seen || !watcher.namesChanges) list = true;
    }
  } finally {
    pending.clear();
    for (const e of emitted) closeQuietly(e.fd);
  }
}

function oldestAfter(seqs: Set<number>, after: number): number | undefined {
  let oldest: number | undefined;
  for (const seq of seqs) {
    if (seq <= after) seqs.delete(seq);
    else if (oldest === undefined || seq < oldest) oldest = seq;
  }
  return oldest;
}

/** The ring entry that is the same file as `id` (newest first: FILE is usually the newest), if any. */
function ringSeqOf(paths: Bus['paths'], id: ChunkIdentity): number | undefined {
  const refs = listRecent(paths);
  for (let i = refs.length - 1; i >= 0; i--) {
    try {
      const st = fs.lstatSync(childPath(paths.dir, refs[i]!.name), { bigint: true });
      if (st.dev === id.dev && st.ino === id.ino) return refs[i]!.seq;
    } catch { /* pruned meanwhile */ }
  }
  return undefined;
}

/**
 * The newest ring entry at start that our producers made: a name planted
 * above it (say `.BUS.<huge>.recent`) must not make this consumer skip
 * every real entry below it. Usually one lstat, at start only.
 */
function newestTrusted(paths: Bus['paths'], refs: readonly RecentRef[], ignored: Set<number>): number {
  const trust = directoryTrust(paths.dir);
  for (let i = refs.length - 1; i >= 0; i--) {
    try {
      if (distrust(fs.lstatSync(childPath(paths.dir, refs[i]!.name)), 'file', trust) === undefined) return refs[i]!.seq;
      ignored.add(refs[i]!.seq);
    } catch { /* pruned meanwhile */ }
  }
  return 0;
}
