import { FilebusError } from '../errors.js';
import type { StartPosition } from '../options.js';
import { anonymousId, checkConsumerName, OwnedCursor, scanCursors } from '../wire/cursor-file.js';
import {
  consumersDir, ensureMulticastDirs, isEndMarker, listSegments, openSegment, parseSegmentName, readOpenSegment, readSegment, segmentsDir,
  type SegmentRef,
} from '../wire/segments.js';
import type { ChunkSource } from './chunk-source.js';
import type { Bus } from './open-bus.js';
import type { ReadBuffer } from '../util/read-buffer.js';
import { closeQuietly } from '../wire/chunk-file.js';

export interface MulticastJoin {
  readonly name: string | undefined;
  readonly from: StartPosition | undefined;
}

/** Segments read for one emitted chunk. */
interface Run {
  readonly data: Buffer;
  readonly count: number;
}

/** Reads land at `offset` in `buffer`. */
function regionOf(buffer: Buffer, offset: number): ReadBuffer {
  return { take: (size) => buffer.subarray(offset, offset + size) };
}

/** Where a consumer is and how far behind the newest segment. */
export interface ConsumerPosition {
  /** Sequence number of the next segment this consumer will emit. */
  readonly position: number;
  /** Sequence number of the newest segment on the bus (0 if none). */
  readonly head: number;
  /** Segments published but not yet emitted by this consumer. */
  readonly lagChunks: number;
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
    scanCursors(dir, true, bus.liveness);
    if (join.name !== undefined) {
      const existing = OwnedCursor.open(dir, checkConsumerName(join.name), bus.liveness);
      if (existing) return existing;
    }
    const start = startPosition(segmentsDir(bus.paths), listSegments(segmentsDir(bus.paths)), join.from);
    return OwnedCursor.create(dir, join.name ?? anonymousId(), start, bus.options.fileMode, bus.liveness);
  } finally {
    bus.lock.release();
  }
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
  bus: Bus, cursor: OwnedCursor, report: (p: ConsumerPosition) => void, into: ReadBuffer, coalesceBytes = 0,
): ChunkSource {
  const dir = segmentsDir(bus.paths);
  const known = new Map<number, SegmentRef>();
  let head = 0;
  let next = cursor.position;
  // Event names tell a consumer that keeps up which segment arrived, so it
  // lists the directory only when it falls behind or events are missing.
  // Only segments still to come wake the consumer: the producer's deletions
  // of old segments would otherwise wake it for nothing, and each such
  // wake-up would cost a listing.
  const watcher = bus.watchDirectory(dir, (name) => (parseSegmentName(name)?.seq ?? -1) >= next, (name) => {
    const ref = parseSegmentName(name)!;
    known.set(ref.seq, ref);
    head = Math.max(head, ref.seq);
  });
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
        ref = known.get(next);
        reportPosition();
        const oldest = segments[0];
        if (!ref && oldest && oldest.seq > next) {
          throw new FilebusError('ERR_FILEBUS_CORRUPT',
            `segment ${next} is missing from ${dir} (oldest retained is ${oldest.seq}): it was deleted before this consumer read it`, { path: dir });
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
  }
}
