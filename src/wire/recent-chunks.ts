import fs from 'node:fs';
import { errnoCode, ioError } from '../errors.js';
import { childPath, parseRecentName, recentName, type BusPaths, type RecentRef } from './layout.js';
import { listDirectory } from '../util/list-directory.js';
import { directoryTrust, distrust } from '../util/trust.js';

/**
 * Lossy mode's catch-up ring: our lossy producer also links each chunk,
 * just before it renames it over FILE, as `.BASE.<seq, 20 digits>.recent`
 * beside FILE (layout.ts, recentName), and keeps the newest of these. Our
 * lossy consumers read chunks from these names in sequence order, so one
 * that falls a few chunks behind (a busy machine, a fast producer) catches
 * up instead of missing them; only one that falls behind the whole ring
 * misses chunks. Reference consumers see FILE exactly as before, and a
 * reference producer, which writes no ring, is followed through FILE.
 *
 * The ring holds at most RING_CHUNKS chunks and RING_BYTES bytes (always at
 * least the newest two); it is cut down to half of either limit at once, so
 * deleting costs one unlink per chunk on average. A consumer can thus fall
 * half the ring behind. A shorter ring let consumers on a busy machine miss
 * chunks (docs/performance.md, "What changed since the first run"); entries
 * are hard links, so a longer ring costs directory entries, not bytes.
 */
export const RING_CHUNKS = 256;
export const RING_BYTES = 16 * 1024 * 1024;

/** Names in a row found taken by something not ours before a chunk goes without a ring entry. */
const SQUATTED_TRIES = 8;

/** The ring entries present, oldest first. */
export function listRecent(paths: BusPaths): RecentRef[] {
  const refs: RecentRef[] = [];
  for (const name of listDirectory(paths.dir)) {
    const ref = parseRecentName(paths, name);
    if (ref) refs.push(ref);
  }
  return refs.sort((a, b) => a.seq - b.seq);
}

/** The producer's side of the ring. Every method runs under the bus lock. */
export class RecentRing {
  readonly #paths: BusPaths;
  /** Entries this producer believes present, oldest first, with sizes. */
  #entries: Array<RecentRef & { size: number }> | undefined;
  #bytes = 0;

  constructor(paths: BusPaths) {
    this.#paths = paths;
  }

  /**
   * Links the written temporary file in as the next entry. The sequence
   * number is this producer's last plus one; link() refuses a name that
   * exists, which is how another producer's entry is noticed (then the
   * directory is listed again). A name that is taken by something not
   * ours (planted by another user: the listing ignores it) is stepped
   * over; after a few, this chunk goes without a ring entry: the ring only
   * helps consumers catch up, FILE still carries the chunk.
   */
  add(temp: string, size: number): void {
    let entries = (this.#entries ??= this.#list());
    let seq = (entries.at(-1)?.seq ?? 0) + 1;
    for (let attempt = 0; ; attempt++) {
      const name = recentName(this.#paths, seq);
      try {
        fs.linkSync(temp, childPath(this.#paths.dir, name));
      } catch (error) {
        if (errnoCode(error) !== 'EEXIST') throw ioError('link', childPath(this.#paths.dir, name), error);
        if (attempt >= SQUATTED_TRIES) return;
        entries = this.#entries = this.#list();
        seq = Math.max(seq + 1, (entries.at(-1)?.seq ?? 0) + 1);
        continue;
      }
      entries.push({ seq, name, size });
      this.#bytes += size;
      this.#prune(entries);
      return;
    }
  }

  /** Removes every entry (FILE keeps the newest chunk). */
  clear(): void {
    for (const ref of this.#entries ?? this.#list()) this.#remove(ref.name);
    this.#entries = [];
    this.#bytes = 0;
  }

  /**
   * The entries our producers made (regular files of users the bus trusts:
   * util/trust.ts), with sizes. Anything else at a ring name was planted:
   * it numbers nothing (a planted `.BASE.<huge>.recent` would otherwise
   * push the numbers past what a name can hold) and is never pruned.
   */
  #list(): Array<RecentRef & { size: number }> {
    this.#bytes = 0;
    const trust = directoryTrust(this.#paths.dir);
    const entries: Array<RecentRef & { size: number }> = [];
    for (const ref of listRecent(this.#paths)) {
      let st: fs.Stats;
      try {
        st = fs.lstatSync(childPath(this.#paths.dir, ref.name));
      } catch {
        continue; // gone meanwhile
      }
      if (distrust(st, 'file', trust) !== undefined) continue;
      this.#bytes += st.size;
      entries.push({ ...ref, size: st.size });
    }
    return entries;
  }

  #prune(entries: Array<RecentRef & { size: number }>): void {
    if (entries.length <= RING_CHUNKS && this.#bytes <= RING_BYTES) return;
    while (entries.length > 2 && (entries.length > RING_CHUNKS / 2 || this.#bytes > RING_BYTES / 2)) {
      const oldest = entries.shift()!;
      this.#bytes -= oldest.size;
      this.#remove(oldest.name);
    }
  }

  #remove(name: string): void {
    try {
      fs.unlinkSync(childPath(this.#paths.dir, name));
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw ioError('remove', childPath(this.#paths.dir, name), error);
    }
  }
}
