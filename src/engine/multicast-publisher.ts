import fs from 'node:fs';
import { ioError } from '../errors.js';
import type { ChangeWatcher } from '../watch/change-watcher.js';
import { closeQuietly, removeQuietly, writeAllAt } from '../wire/chunk-file.js';
import type { ProducerRegistration } from '../wire/producer-registry.js';
import { childPath, consumersDir, cursorIdOf, segmentName, segmentsDir, tempPath, type SegmentRef } from '../wire/layout.js';
import { createFile } from '../util/permissions.js';
import { checksum, ensureMulticastDirs, listSegments, removeSegment, segmentSize } from '../wire/segments.js';
import { CursorView } from './cursor-view.js';
import type { Bus } from './open-bus.js';
import type { Publisher } from './contracts.js';

/** O_EXCL|O_NOFOLLOW: a planted name is never written through. */
const CREATE_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;

/** A chunk on its way to becoming a segment. */
interface Pending {
  readonly buffers: readonly Buffer[];
  temp: string | undefined;
  /** The temporary file's descriptor, kept open until it is published or dropped (see #head). */
  fd: number;
  readonly crc: number;
  readonly size: number;
}

interface Retained extends SegmentRef {
  /** Bytes; only tracked when the window is counted in bytes. */
  readonly size: number;
}

/** What retention says about the next chunk. */
type Room = 'go' | 'wait' | 'install first';

/** The file this producer linked FILE to last, as it was once its publish was over. */
interface Head {
  /** Held open so the inode cannot be freed and its number given to another file. */
  readonly fd: number;
  readonly dev: bigint;
  readonly ino: bigint;
  readonly ctimeNs: bigint;
}

/**
 * Multicast: each chunk becomes the next numbered segment, and FILE is
 * re-linked to it so reference lossy consumers can still eavesdrop.
 *
 * Invariant: whenever the set of segments grows, FILE's identity changes
 * first. Under the lock a producer decides which chunks of its batch fit,
 * links FILE to the last of them (still a temporary file), and only then
 * renames the temporaries to their segment names. A producer that dies
 * between the two leaves FILE naming a file that is not (or not yet)
 * a segment, never the segment another producer linked last.
 *
 * So, under the lock, a producer learns the newest sequence number cheaply:
 * if FILE is still the file it linked last (same device, inode and ctime),
 * nobody has added a segment since, and its own list is current. Otherwise
 * it lists the directory again. It keeps that file open, so its inode
 * number cannot be freed and reused by a later chunk that could then pass
 * for it; the ctime catches anything else done to it (links, renames,
 * unlinks all change it).
 *
 * Retention runs before a publish that would take the bus past its window:
 * it reads every cursor, deletes segments that every consumer has read
 * down to half the window (so this happens once per half window, not per
 * chunk), and reports whether a live consumer is a full window behind,
 * in which case the producer waits for cursors to move.
 */
export class MulticastPublisher implements Publisher {
  readonly #bus: Bus;
  readonly #segments: string;
  readonly #consumers: string;
  #retained: Retained[] = [];
  /** How many of the newest in #retained are decided but not yet renamed into place. */
  #unplaced = 0;
  #head: Head | undefined;
  /** Temporary files not yet published, and their open descriptors. */
  readonly #temps = new Map<string, number>();
  /** Set by a wait at the window, cleared by a call that never waits. */
  #oneAtATime = false;
  #cursorWatcher: ChangeWatcher | undefined;
  #cursorView: CursorView | undefined;
  readonly #registration: ProducerRegistration;

  /** `registration`: this producer's, made by createPublisher; this publisher closes it when it finishes. */
  constructor(bus: Bus, registration: ProducerRegistration) {
    this.#bus = bus;
    ensureMulticastDirs(bus.paths, bus.options.fileMode);
    this.#segments = segmentsDir(bus.paths);
    this.#consumers = consumersDir(bus.paths);
    this.#registration = registration;
  }

  /** Chunks that go out under one hold of the lock. */
  readonly batch = 64;

  /**
   * Writes the chunks to temporary files outside the lock, then, under it,
   * renames each to its segment and re-links FILE once, to the last. A
   * reference consumer watching FILE may miss the ones between: that is
   * lossy mode's promise anyway.
   *
   * Once the producer has had to wait at the window it goes one chunk at a
   * time (one temporary file written ahead, as the disk bound promises)
   * until a whole call passes without waiting.
   */
  async publishAll(chunks: readonly (readonly Buffer[])[]): Promise<void> {
    const { lock, signal, options } = this.#bus;
    const pending: Pending[] = chunks.map((buffers) => ({
      buffers, temp: undefined, fd: -1, crc: checksum(buffers), size: buffers.reduce((sum, b) => sum + b.length, 0),
    }));
    let waited = false;
    try {
      let done = 0;
      while (done < pending.length) {
        const upto = this.#oneAtATime ? done + 1 : pending.length;
        for (let i = done; i < upto; i++) this.#writeTemp(pending[i]!);
        // Read before looking at the cursors, so a move in between is not missed.
        const seen = this.#cursorWatcher?.generation;
        let blocked = false;
        await lock.acquire(signal);
        try {
          this.#refreshHead();
          let first = done;
          for (; done < upto; done++) {
            const { crc, size } = pending[done]!;
            const seq = (this.#retained.at(-1)?.seq ?? 0) + 1;
            let room = this.#makeRoom(size);
            if (room === 'install first') {
              // Retention would delete chunks of this batch not yet in place
              // (a window smaller than the batch): put those in place first.
              this.#install(pending.slice(first, done), this.#retained.slice(first - done));
              first = done;
              room = this.#makeRoom(size);
            }
            if (room === 'wait') {
              blocked = true;
              break;
            }
            this.#retained.push({ seq, crc, name: segmentName(seq, crc), size });
            this.#unplaced += 1;
          }
          if (done > first) this.#install(pending.slice(first, done), this.#retained.slice(first - done));
        } finally {
          lock.release();
        }
        if (!blocked) continue;
        waited = true;
        this.#oneAtATime = true;
        for (let i = done + 1; i < pending.length; i++) this.#dropTemp(pending[i]!);
        // A live consumer is a full window behind: wait for a cursor to move.
        // A consumer's death makes no file event (only its flock goes), so
        // look again soon whatever happens.
        // The watcher is made the first time the producer has to wait: a
        // producer that never waits has no use for every cursor write's event.
        const watcher = (this.#cursorWatcher ??= this.#bus.watchDirectory(this.#consumers, { wanted: (name) => cursorIdOf(name) !== undefined }));
        const lookAgainMs = Math.min(options.sleepIntervalMs, this.#bus.view.livenessRecheckMs);
        await watcher.changedSince(seen ?? watcher.generation, lookAgainMs, signal);
      }
      if (!waited) this.#oneAtATime = false;
    } finally {
      this.discard();
    }
  }

  #writeTemp(chunk: Pending): void {
    if (chunk.temp !== undefined) return;
    const temp = tempPath(this.#bus.paths);
    let fd: number;
    try {
      fd = createFile(temp, CREATE_FLAGS, this.#bus.options.fileMode);
    } catch (error) {
      throw ioError('create', temp, error);
    }
    try {
      writeAllAt(fd, chunk.buffers);
    } catch (error) {
      closeQuietly(fd);
      removeQuietly(temp);
      throw ioError('write', temp, error);
    }
    this.#temps.set(temp, fd);
    chunk.temp = temp;
    chunk.fd = fd;
  }

  #dropTemp(chunk: Pending): void {
    if (chunk.temp === undefined) return;
    removeQuietly(chunk.temp);
    closeQuietly(chunk.fd);
    this.#temps.delete(chunk.temp);
    chunk.temp = undefined;
    chunk.fd = -1;
  }

  /**
   * The empty segment marks the end of the stream, written by the last
   * producer to finish. Checking for others and leaving happen under one
   * hold of the lock, so of two producers finishing together exactly one
   * sees the other gone and writes the marker.
   */
  async finish(): Promise<void> {
    const { lock, signal } = this.#bus;
    await lock.acquire(signal);
    let last: boolean;
    try {
      last = !this.#registration.othersRunning();
      this.#registration.close();
    } finally {
      lock.release();
    }
    if (last) await this.publishAll([[]]);
  }

  discard(): void {
    for (const [temp, fd] of this.#temps) {
      removeQuietly(temp);
      closeQuietly(fd);
    }
    this.#temps.clear();
  }

  close(): void {
    this.discard();
    this.#forgetHead();
    this.#registration.close();
  }

  #refreshHead(): void {
    const head = this.#head;
    // FILE unchanged since this producer's last publish: no other producer
    // has published, and the segments it knows are still the newest.
    if (head && this.#bus.view.fileUnchanged(head)) return;
    this.#forgetHead();
    this.#unplaced = 0;
    const bytes = 'bytes' in this.#bus.options.window;
    // Segments never change once in place: sizes already known need no stat.
    const known = bytes ? new Map(this.#retained.map((s) => [s.name, s.size])) : undefined;
    this.#retained = [];
    for (const ref of listSegments(this.#segments)) {
      const size = known ? known.get(ref.name) ?? segmentSize(this.#segments, ref) : 0;
      if (size !== undefined) this.#retained.push({ ...ref, size });
    }
  }

  #forgetHead(): void {
    if (this.#head) closeQuietly(this.#head.fd);
    this.#head = undefined;
  }

  /**
   * Publishes the chunks of a batch as `segments` (already in #retained):
   * FILE first, linked to the last chunk's temporary file (no second copy
   * of the bytes), then each temporary renamed to its segment, in order.
   */
  #install(chunks: readonly Pending[], segments: readonly Retained[]): void {
    // Until this publish is over, the next one lists the segments.
    this.#forgetHead();
    const last = chunks.at(-1)!;
    const link = tempPath(this.#bus.paths);
    try {
      fs.linkSync(last.temp!, link);
      fs.renameSync(link, this.#bus.paths.file);
    } catch (error) {
      removeQuietly(link);
      throw ioError('publish to', this.#bus.paths.file, error);
    }
    for (let i = 0; i < chunks.length; i++) {
      const chunk = chunks[i]!;
      const target = childPath(this.#segments, segments[i]!.name);
      try {
        fs.renameSync(chunk.temp!, target);
      } catch (error) {
        throw ioError('publish segment', target, error);
      }
      this.#temps.delete(chunk.temp!);
      chunk.temp = undefined;
      if (chunk !== last) closeQuietly(chunk.fd);
    }
    this.#unplaced = 0;
    // After the renames, which change the ctime.
    try {
      const st = fs.fstatSync(last.fd, { bigint: true });
      this.#head = { fd: last.fd, dev: st.dev, ino: st.ino, ctimeNs: st.ctimeNs };
    } catch {
      // Only a shortcut for the next publish: without it the next one lists the segments.
      closeQuietly(last.fd);
    }
  }

  /**
   * Deletes what retention allows before `seq` is added. Returns false when
   * the producer must wait: a live consumer would be more than a window behind.
   */
  #makeRoom(size: number): Room {
    const { window, retainAll } = this.#bus.options;
    if (retainAll) return 'go';
    if (this.#within(window, this.#retained, size)) return 'go';

    const view = (this.#cursorView ??= new CursorView(this.#consumers, this.#bus.liveness, this.#bus.view));
    view.refresh();
    const room = this.#deleteDownTo(view.minimums().all, window, size);
    if (room !== 'wait') return room;
    // About to wait: only on what the live cursors say now (a cached one may
    // have moved, or died), and with what that lets retention delete.
    view.rereadLive();
    return this.#deleteDownTo(view.minimums().all, window, size);
  }

  /**
   * Deletes segments down to half a window, never one a cursor has not
   * passed; returns whether the new one may go out: not while a live
   * consumer would be more than a window behind, nor before the chunks of
   * this batch that retention would delete are in place.
   */
  #deleteDownTo(minAll: number, window: { chunks: number } | { bytes: number }, size: number): Room {
    const keep = 'chunks' in window ? { chunks: Math.max(1, Math.floor(window.chunks / 2)) } : { bytes: Math.floor(window.bytes / 2) };
    while (this.#retained.length > 0) {
      const oldest = this.#retained[0]!;
      if (oldest.seq >= minAll || this.#within(keep, this.#retained, size)) break;
      if (this.#retained.length <= this.#unplaced) return 'install first';
      removeSegment(this.#segments, oldest);
      this.#retained.shift();
    }
    const minLive = this.#cursorView!.minimums().live;
    if (minLive === Infinity) return 'go';
    // Unread by the slowest live consumer once seq is published.
    const unread = this.#retained.filter((s) => s.seq >= minLive);
    return this.#within(window, unread, size) ? 'go' : 'wait';
  }

  /** Whether `segments` plus the new one fit in `limit`. */
  #within(limit: { chunks: number } | { bytes: number }, segments: readonly Retained[], size: number): boolean {
    if ('chunks' in limit) return segments.length + 1 <= limit.chunks;
    let total = size;
    for (const s of segments) total += s.size;
    // One chunk larger than the window still has to pass.
    return total <= limit.bytes || segments.length === 0;
  }
}
