import { sleep } from '../util/abortable.js';
import { RecentRing } from '../wire/recent-chunks.js';
import { RenamePublisher } from './rename-publisher.js';

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
export class LossyPublisher extends RenamePublisher {
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
