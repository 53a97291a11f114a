import fs from 'node:fs';
import { ioError } from '../errors.js';
import { fileExists, removeQuietly, writeNewFile } from '../wire/chunk-file.js';
import { tempPath } from '../wire/layout.js';
import { RecentRing } from '../wire/recent-chunks.js';
import { writeIntoSpare } from '../wire/spare-chunk.js';
import { sleep } from '../util/abortable.js';
import { chunkOnServer, listed } from '../wire/server-view.js';
import type { ChangeWatcher } from '../watch/change-watcher.js';
import { MulticastPublisher } from './multicast-publisher.js';
import type { Bus } from './open-bus.js';
import { RegisteredPublisher, registerProducer } from './registered-publisher.js';

/** Publishes chunks onto a bus in one mode. */
export interface Publisher {
  /** How many full chunks one call to publishAll may take. */
  readonly batch: number;
  /**
   * A wait to finish before the next short chunk (less than a block) is
   * cut, or undefined (no wait): input goes on queueing meanwhile, so what
   * arrives in it goes out in one chunk. Lossy mode uses it once, after its
   * first chunk (LossyPublisher).
   */
  holdBeforeCut?(): Promise<void> | undefined;
  /** Publishes these chunks (each made of buffers) in order; resolves once the last is visible at FILE. */
  publishAll(chunks: readonly (readonly Buffer[])[]): Promise<void>;
  /** Marks the end of the stream, where the mode has a marker. */
  finish(): Promise<void>;
  /** Removes a temporary file left by an interrupted publish. */
  discard(): void;
  /** Lets go of what the publisher holds on the bus (after finish, or when aborted). */
  close(): void;
}

/** The publisher for the bus's mode, registered in FILE.producers/ (see registered-publisher.ts). */
export function createPublisher(bus: Bus): Publisher {
  const registration = registerProducer(bus);
  try {
    const inner = bus.options.mode === 'lossy' ? new LossyPublisher(bus)
      : bus.options.mode === 'back-pressure' ? new BackPressurePublisher(bus)
        : new MulticastPublisher(bus, registration!);
    return new RegisteredPublisher(inner, registration);
  } catch (error) {
    registration?.close();
    throw error;
  }
}

/**
 * Writes the chunk to a fresh temporary file outside the lock (the name is
 * ours alone), then renames it over FILE under the lock, so readers only ever
 * open whole chunks and the lock is held for one rename.
 */
abstract class RenamePublisher implements Publisher {
  /** FILE holds one chunk: each must be seen (lossy) or taken (back-pressure) before the next. */
  readonly batch = 1;
  protected readonly bus: Bus;
  #temp: string | undefined;

  constructor(bus: Bus) {
    this.bus = bus;
  }

  async publishAll(chunks: readonly (readonly Buffer[])[]): Promise<void> {
    for (const chunk of chunks) await this.publish(chunk);
  }

  protected async publish(buffers: readonly Buffer[]): Promise<void> {
    const temp = tempPath(this.bus.paths);
    this.#temp = temp;
    this.writeChunk(temp, buffers);
    try {
      await this.install(temp, buffers.reduce((sum, b) => sum + b.length, 0));
    } finally {
      this.discard();
    }
  }

  async finish(): Promise<void> {}

  discard(): void {
    if (this.#temp !== undefined) removeQuietly(this.#temp);
    this.#temp = undefined;
  }

  close(): void {
    this.discard();
  }

  /** Writes the chunk to the file `temp`, which does not exist yet. */
  protected writeChunk(temp: string, buffers: readonly Buffer[]): void {
    writeNewFile(temp, buffers, this.bus.options.fileMode);
  }

  /** Moves the written temporary file (`size` bytes) to FILE, holding the lock for the rename. */
  protected abstract install(temp: string, size: number): Promise<void>;

  protected rename(temp: string): void {
    try {
      fs.renameSync(temp, this.bus.paths.file);
    } catch (error) {
      throw ioError('publish to', this.bus.paths.file, error);
    }
    this.#temp = undefined;
  }
}

/**
 * Lossy multicast: replace FILE whatever it holds; consumers that did not look in time miss the old chunk.
 *
 * A producer's first chunk stays at FILE for two --sleep-intervals before
 * a short chunk replaces it (what arrives meanwhile goes out as one chunk;
 * full blocks are not held, as the reference does not hold them). Why:
 * a reference consumer started before FILE existed cannot watch it, and
 * looks only every --sleep-interval until it appears; and a consumer that
 * watched an older FILE is woken by it, but only once. Our producer cuts a
 * chunk as soon as input pauses, so a second message that came while the
 * first chunk was being published (a start-up's slowest publish) replaced
 * it within milliseconds, and that consumer missed it (issue 13, point 5).
 * The reference producer never publishes two partial chunks within a
 * --sleep-interval. Later chunks are not held (latency); consumers of ours
 * catch up through the ring.
 */
class LossyPublisher extends RenamePublisher {
  readonly #ring = new RecentRing(this.bus.paths);
  #ringInUse = false;
  /** When the first chunk may be replaced; undefined before the first publish, 0 once that time has passed. */
  #firstUntil: number | undefined;

  holdBeforeCut(): Promise<void> | undefined {
    if (!this.#firstUntil) return undefined;
    const wait = this.#firstUntil - Date.now();
    this.#firstUntil = 0;
    return wait > 0 ? sleep(wait, this.bus.signal) : undefined;
  }

  protected async install(temp: string, size: number): Promise<void> {
    await this.bus.lock.acquire(this.bus.signal);
    try {
      // Into the ring first: a consumer that sees FILE change finds the entry already there.
      this.#ring.add(temp, size);
      this.#ringInUse = true;
      this.rename(temp);
    } finally {
      this.bus.lock.release();
    }
    this.#firstUntil ??= Date.now() + FIRST_CHUNK_POLLS * this.bus.options.sleepIntervalMs;
  }

  /**
   * The ring goes when the producer does (FILE keeps the newest chunk), after
   * a moment's grace for consumers still catching up on the last chunks.
   */
  override async finish(): Promise<void> {
    if (!this.#ringInUse) return;
    await sleep(Math.min(this.bus.options.sleepIntervalMs, RING_GRACE_MS), this.bus.signal);
    await this.bus.lock.acquire(this.bus.signal);
    try {
      this.#clearRing();
    } finally {
      this.bus.lock.release();
    }
  }

  override close(): void {
    super.close();
    this.#clearRing();
  }

  #clearRing(): void {
    if (!this.#ringInUse) return;
    this.#ringInUse = false;
    try {
      this.#ring.clear();
    } catch { /* leftovers are removed by the next producer's ring, or harmless */ }
  }
}

/** How many --sleep-intervals a lossy producer's first chunk stays at FILE: a poll's own time and some scheduling delay on top of one. */
const FIRST_CHUNK_POLLS = 2;

/** How long a finishing lossy producer keeps its ring for consumers still catching up. */
const RING_GRACE_MS = 100;

/**
 * Back-pressure: FILE existing means a consumer has not taken the last chunk
 * yet, so wait until it is gone. The check is repeated under the lock
 * because another producer may have published in between.
 *
 * On a network file system this host's cache can show FILE for a second
 * after a consumer on another host removed it: the wait asks the server's
 * listing instead, and the check under the lock asks the server itself
 * (server-view.ts), since replacing a chunk nobody took would lose it.
 */
class BackPressurePublisher extends RenamePublisher {
  #watcher: ChangeWatcher | undefined;
  /** The permission bits of this producer's new files: only a spare with the same is reused. */
  #mode = this.bus.options.fileMode;

  /** Into the spare a consumer left (wire/spare-chunk.ts) when there is one, on local file systems. */
  protected override writeChunk(temp: string, buffers: readonly Buffer[]): void {
    const local = !this.bus.network;
    if (local && this.#mode !== undefined && writeIntoSpare(this.bus.paths, temp, buffers, this.#mode)) return;
    super.writeChunk(temp, buffers);
    // No --file-mode: whatever the umask made of 0666, learned from the first new file.
    if (local && this.#mode === undefined) this.#mode = fs.statSync(temp).mode & 0o7777;
  }

  protected async install(temp: string): Promise<void> {
    const { paths, lock, signal, options } = this.bus;
    const watcher = (this.#watcher ??= this.bus.watchDirectory(paths.dir, (name) => name === paths.base));
    for (;;) {
      const seen = watcher.generation;
      if (this.bus.network ? listed(paths.dir, paths.base) : fileExists(paths.file)) {
        await watcher.changedSince(seen, options.sleepIntervalMs, signal);
        continue;
      }
      await lock.acquire(signal);
      try {
        if (!(this.bus.network ? chunkOnServer(paths) : fileExists(paths.file))) {
          this.rename(temp);
          return;
        }
      } finally {
        lock.release();
      }
      // Another producer was faster: wait for its chunk to be taken.
      await watcher.changedSince(seen, options.sleepIntervalMs, signal);
    }
  }

  /** The empty chunk is the reference's end-of-stream marker. */
  override async finish(): Promise<void> {
    await this.publish([]);
  }
}
