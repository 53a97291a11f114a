import fs from 'node:fs';
import { FilebusError } from '../errors.js';
import { createBusLock } from '../lock/strategy.js';
import type { StartPosition } from '../options.js';
import { OwnedCursor, scanCursors } from '../wire/cursor-file.js';
import { ensureMulticastDirs, isEndMarker, listSegments, openSegment, readOpenSegment, readSegment } from '../wire/segments.js';
import { anonymousId, consumersDir, isAnonymous, parseSegmentName, segmentsDir, tempPath, type SegmentRef } from '../wire/layout.js';
import type { ChunkSource, ConsumerPosition, MulticastJoin } from './contracts.js';
import type { ChangeWatcher } from '../watch/change-watcher.js';
import type { Bus } from './open-bus.js';
import type { ReadBuffer } from '../util/read-buffer.js';
import { closeQuietly } from '../wire/chunk-file.js';
import { sleep } from '../util/abortable.js';

/** Segments read for one emitted chunk. */
interface Run {
  readonly data: Buffer;
  readonly count: number;
}

/** Reads land at `offset` in `buffer`. */
function regionOf(buffer: Buffer, offset: number): ReadBuffer {
  return { take: (size) => buffer.subarray(offset, offset + size) };
}

/**
 * Registers the consumer's cursor under the bus lock, so that no producer
 * deletes segments between choosing the start and recording it.
 */
export async function joinMulticast(bus: Bus, join: MulticastJoin): Promise<OwnedCursor> {
  ensureMulticastDirs(bus.paths, bus.options.fileMode);
  const dir = consumersDir(bus.paths);
  await bus.lock.acquire(bus.signal);
  try {
    // Forget anonymous consumers that died, so they hold nothing even when
    // no retention pass runs (--retain all).
    scanCursors(dir, bus.liveness, { sweep: true });
    const segments = listSegments(segmentsDir(bus.paths));
    if (join.name !== undefined) {
      const existing = OwnedCursor.open(dir, join.name, bus.liveness);
      if (existing) {
        // Listed under the lock: a publish cannot be half done.
        const head = segments.at(-1)?.seq ?? 0;
        if (existing.position > head + 1) {
          existing.close();
          throw futurePosition(bus, join.name, existing.file, existing.position, head);
        }
        return existing;
      }
    }
    const start = startPosition(segmentsDir(bus.paths), segments, join.from);
    return OwnedCursor.create(dir, join.name ?? anonymousId(), start, bus.options.fileMode, bus.liveness, tempPath(bus.paths));
  } finally {
    bus.lock.release();
  }
}

/** How to get a named consumer past a damaged position: it ignores --from while its cursor exists. */
function restartAdvice(id: string, from?: number): string {
  if (isAnonymous(id)) return from === undefined ? 'restart the consumer' : `restart the consumer with --from ${from}`;
  return `run \`filebus remove-consumer ${id}\` (same --filename), then start it again${from === undefined ? '' : ` with --from ${from}`}`;
}

function futurePosition(bus: Bus, id: string, file: string, position: number, head: number): FilebusError {
  return new FilebusError('ERR_FILEBUS_CORRUPT',
    `consumer ${isAnonymous(id) ? '' : `${id} `}is at segment ${position}, but the newest segment in ${segmentsDir(bus.paths)} is ${head || 'none'}: `
    + `its cursor ${file} points past the stream (the segments were removed, or the cursor comes from another bus); ${restartAdvice(id)}`, { path: file });
}

/**
 * earliest: the oldest retained segment. latest: the next one to be
 * published. A number: that segment, which must be retained (or the next).
 * Default: the oldest retained segment of the current stream, i.e. after
 * the newest end marker unless that marker is the newest segment (then the
 * stream has ended and a late consumer replays what is retained of it).
 */
function startPosition(dir: string, segments: readonly SegmentRef[], from: StartPosition | undefined): number {
  const oldest = segments[0]?.seq ?? 1;
  const next = (segments.at(-1)?.seq ?? 0) + 1;
  if (from === 'earliest') return oldest;
  if (from === 'latest') return next;
  if (typeof from === 'number') {
    if (from < oldest || from > next) {
      throw new FilebusError('ERR_FILEBUS_INVALID_OPTION',
        `--from ${from}: segment is not retained (retained: ${segments.length ? `${oldest} to ${next - 1}` : 'none'}; next: ${next})`);
    }
    // Listed under the lock, so a number missing between the oldest and the newest is a hole for good.
    if (from < next && !segments.some((s) => s.seq === from)) {
      const after = segments.find((s) => s.seq > from)!.seq;
      throw new FilebusError('ERR_FILEBUS_CORRUPT',
        `--from ${from}: segment ${from} is missing from ${dir} (retained: ${oldest} to ${next - 1}, with a hole); the next one there is ${after}: use --from ${after}`);
    }
    return from;
  }
  for (let i = segments.length - 2; i >= 0; i--) {
    if (isEndMarker(dir, segments[i]!)) return segments[i + 1]!.seq;
  }
  return oldest;
}

/**
 * Emits segments from the cursor on, in order, each checked against its
 * checksum, and moves the cursor past a segment when the next one is
 * requested: a consumer killed while delivering segment N emits N again
 * when it resumes (named consumers), and never anything before N.
 */
export async function* multicastChunks(
  bus: Bus, joined: OwnedCursor, report: (p: ConsumerPosition) => void, into: ReadBuffer, coalesceBytes = 0,
): ChunkSource {
  const dir = segmentsDir(bus.paths);
  const known = new Map<number, SegmentRef>();
  let cursor = joined;
  let head = 0;
  let next = cursor.position;
  // Event names tell a consumer that keeps up which segment arrived, so it
  // lists the directory only when it falls behind or events are missing.
  // Only segments still to come wake the consumer: the producer's deletions
  // of old segments would otherwise wake it for nothing, and each such
  // wake-up would cost a listing.
  const watch = (): ChangeWatcher => bus.watchDirectory(dir, {
    wanted: (name) => (parseSegmentName(name)?.seq ?? -1) >= next,
    onName: (name) => {
      const ref = parseSegmentName(name)!;
      known.set(ref.seq, ref);
      head = Math.max(head, ref.seq);
    },
  });
  let watcher = watch();
  // Which directory this consumer joined: one deleted and made again is a
  // new bus. Held open, so its inode number cannot be freed and reused by
  // the new directory, which would then pass for it.
  let joinedDir = openDirectory(dir);
  const reportPosition = (): void => report({ position: next, head, lagChunks: Math.max(0, head - next + 1) });
  const relist = (): SegmentRef[] => {
    const segments = listSegments(dir);
    known.clear();
    for (const ref of segments) known.set(ref.seq, ref);
    head = Math.max(head, segments.at(-1)?.seq ?? 0);
    return segments;
  };
  const readOne = (ref: SegmentRef): Run | undefined => {
    const data = readSegment(dir, ref, into);
    return data && { data, count: 1 };
  };
  // Segments already waiting after `ref`, read back to back into one
  // buffer and emitted as one chunk: one write downstream instead of one
  // per segment. The end marker is never merged; it ends the next run.
  const readRun = (ref: SegmentRef): Run | undefined => {
    const first = openSegment(dir, ref);
    if (!first) return undefined;
    let buffer: Buffer;
    let used: number;
    try {
      if (first.size === 0) {
        const data = readOpenSegment(first, ref);
        return data && { data, count: 1 };
      }
      buffer = into.take(Math.max(coalesceBytes, first.size));
      const data = readOpenSegment(first, ref, regionOf(buffer, 0));
      if (!data) return undefined;
      used = data.length;
    } finally {
      closeQuietly(first.fd);
    }
    let count = 1;
    for (let ref = known.get(next + count); ref && used < buffer.length; ref = known.get(next + count)) {
      // A segment that cannot be read (corrupt, not a regular file) ends the
      // run; it fails the next one, as its first, once everything before it
      // has been emitted.
      let segment: ReturnType<typeof openSegment>;
      try {
        segment = openSegment(dir, ref);
      } catch {
        break;
      }
      if (!segment) break;
      try {
        if (segment.size === 0 || used + segment.size > buffer.length) break;
        const data = readOpenSegment(segment, ref, regionOf(buffer, used));
        if (!data) break;
        used += data.length;
        count += 1;
      } catch {
        break;
      } finally {
        closeQuietly(segment.fd);
      }
    }
    return { data: buffer.subarray(0, used), count };
  };
  /**
   * Segment `next` is not in `segments` (a listing): a wait is normal, but
   * some states mean it will never come, and waiting would be silent for
   * ever. Segments are renamed into place in order, under the lock, and
   * retention never deletes one a registered cursor has not passed; so
   * with this consumer's cursor in place:
   * - the oldest segment newer than `next`: `next` was deleted unread;
   * - a newer segment but not `next`, in a second listing too (a listing
   *   racing renames can miss an entry, not one renamed before it began):
   *   a hole;
   * - the newest segment older than `next - 1`, under the lock (a listing
   *   racing a publish can miss both the segment retention deleted and the
   *   one that replaced it): the position is past the stream.
   */
  const diagnose = async (segments: readonly SegmentRef[]): Promise<void> => {
    const oldest = segments[0];
    if (oldest && oldest.seq > next) {
      throw new FilebusError('ERR_FILEBUS_CORRUPT',
        `segment ${next} is missing from ${dir} (oldest retained is ${oldest.seq}): it was deleted before this consumer read it`, { path: dir });
    }
    if ((segments.at(-1)?.seq ?? 0) > next) {
      const again = relist();
      if (known.has(next)) return;
      const after = again.find((s) => s.seq > next);
      if (after) {
        throw new FilebusError('ERR_FILEBUS_CORRUPT',
          `segment ${next} is missing from ${dir}, and segments ${after.seq} to ${again.at(-1)!.seq} are there: it will not come; `
          + `to go on without it, ${restartAdvice(cursor.id, after.seq)}`, { path: dir });
      }
    }
    if ((segments.at(-1)?.seq ?? 0) < next - 1) {
      await bus.lock.acquire(bus.signal);
      let newest: number;
      try {
        newest = relist().at(-1)?.seq ?? 0;
      } finally {
        bus.lock.release();
      }
      if (newest < next - 1) throw futurePosition(bus, cursor.id, cursor.file, next, newest);
    }
  };
  /**
   * This consumer's cursor is no longer at its name: the bus was deleted
   * (and maybe made again), or someone removed the cursor. Retention no
   * longer sees this consumer, so it registers again, under the lock, as a
   * joining consumer would: on the same segment directory at its position
   * (an error if that is gone); on a new one (a new bus, whose numbers have
   * nothing to do with the old) where a new consumer would start. Named
   * consumers keep their name. False while there is no bus to join yet.
   */
  const rejoin = async (): Promise<boolean> => {
    // A bus being deleted (rm -r) loses this cursor before its directories
    // and segments: let a removal in progress go on before judging what is left.
    await sleep(bus.options.sleepIntervalMs, bus.signal);
    const now = directoryIdentity(dir);
    if (!now) return false;
    const was = joinedDir === undefined ? undefined : fs.fstatSync(joinedDir);
    const sameBus = was !== undefined && now.dev === was.dev && now.ino === was.ino;
    // The bus's lock file may be new too: a lock of its own, opened now, locks the one producers use.
    const lock = sameBus ? bus.lock : createBusLock(bus.options.lock, bus.paths, bus.options.fileMode);
    let fresh: OwnedCursor;
    try {
      await lock.acquire(bus.signal);
      try {
        ensureMulticastDirs(bus.paths, bus.options.fileMode);
        const segments = listSegments(dir);
        const consumers = consumersDir(bus.paths);
        let position = next;
        if (sameBus) {
          const oldest = segments[0]?.seq ?? next;
          if (oldest > next) {
            throw new FilebusError('ERR_FILEBUS_CORRUPT',
              `this consumer's cursor ${cursor.file} was removed while it ran, and segment ${next} has since been deleted (oldest retained is ${oldest})`, { path: cursor.file });
          }
        } else {
          position = startPosition(dir, segments, undefined);
        }
        const id = isAnonymous(cursor.id) ? anonymousId() : cursor.id;
        fresh = (isAnonymous(id) ? undefined : OwnedCursor.open(consumers, id, bus.liveness))
          ?? OwnedCursor.create(consumers, id, position, bus.options.fileMode, bus.liveness, tempPath(bus.paths));
      } finally {
        lock.release();
      }
    } catch (error) {
      // The bus was still being deleted: nothing to join yet, look again later.
      await sleep(bus.options.sleepIntervalMs, bus.signal);
      if (directoryIdentity(dir) === undefined) return false;
      throw error;
    } finally {
      if (lock !== bus.lock) lock.close();
    }
    cursor.close();
    cursor = fresh;
    next = cursor.position;
    known.clear();
    head = 0;
    if (!sameBus) {
      void watcher.close();
      watcher = watch();
      if (joinedDir !== undefined) closeQuietly(joinedDir);
      joinedDir = openDirectory(dir);
    }
    return true;
  };
  // The directory is listed at the start, after a wake-up that did not
  // name the next segment, and on every timeout; not each time the
  // consumer catches up. A listing takes the directory's lock, which the
  // producer's renames wait for.
  let listNext = true;
  try {
    for (;;) {
      const seen = watcher.generation;
      let ref = known.get(next);
      if (!ref && listNext) {
        listNext = false;
        const segments = relist();
        // Checked after the listing: a listing that shows a new bus's
        // segments was made after the old bus (and this cursor) was deleted.
        // Two stats, only when the consumer lists anyway.
        if (!cursor.isInPlace()) {
          listNext = await rejoin();
          continue;
        }
        ref = known.get(next);
        reportPosition();
        if (!ref) {
          await diagnose(segments);
          ref = known.get(next);
        }
      }
      if (!ref) {
        await watcher.changedSince(seen, bus.options.sleepIntervalMs, bus.signal);
        if (!known.has(next)) listNext = true;
        continue;
      }
      const run = coalesceBytes > 0 ? readRun(ref) : readOne(ref);
      if (!run) {
        listNext = true; // gone: a listing tells whether it was deleted unread
        continue;
      }
      for (let i = 0; i < run.count; i++) known.delete(next + i);
      head = Math.max(head, next + run.count - 1);
      if (run.data.length === 0) {
        next += 1;
        cursor.advance(next);
        reportPosition();
        return;
      }
      reportPosition();
      yield run.data;
      next += run.count;
      cursor.advance(next);
      reportPosition();
    }
  } finally {
    cursor.close();
    if (joinedDir !== undefined) closeQuietly(joinedDir);
  }
}

function openDirectory(dir: string): number | undefined {
  try {
    return fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  } catch {
    return undefined;
  }
}

function directoryIdentity(dir: string): { dev: number; ino: number } | undefined {
  try {
    const st = fs.statSync(dir);
    return st.isDirectory() ? { dev: st.dev, ino: st.ino } : undefined;
  } catch {
    return undefined;
  }
}
