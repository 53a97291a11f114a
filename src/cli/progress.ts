import type { TransferStats } from '../streams/producer.js';
import { formatBytes, formatRate, formatSeconds } from './format.js';
import { UsageError } from './usage-error.js';

/** Seconds between reports when --progress-interval does not say. */
export const DEFAULT_PROGRESS_INTERVAL = 1;
/** Below a millisecond a timer cannot keep up anyway; zero would spin. */
const MIN_PROGRESS_INTERVAL = 0.001;

/** `--progress-interval`, in seconds, named in a refusal as `option` (the flag or variable it came from). */
export function checkProgressInterval(seconds: number, option: string, shown: string): number {
  if (seconds < MIN_PROGRESS_INTERVAL) throw new UsageError(`${option} must be at least ${MIN_PROGRESS_INTERVAL} seconds, got ${shown}`);
  return seconds;
}

/** A Producer or Consumer: anything with running totals. */
export interface ProgressSource {
  readonly stats: TransferStats;
}

export interface ProgressOptions {
  /** 'producer' or 'consumer': the prefix of each report. */
  readonly role: string;
  readonly intervalMs: number;
  /** A terminal gets one line redrawn in place; anything else a line per report. */
  readonly terminal: boolean;
  /** Where reports go: stderr, never stdout, which carries the data. */
  readonly write: (text: string) => void;
  readonly now?: () => number;
}

/** Erases from the cursor to the end of the line, so a shorter report leaves no tail of a longer one. */
const CLEAR_TO_END = '\x1b[K';

/**
 * `--progress`: bytes, chunks and rate every interval, and a final line
 * with the totals and the average rate. It only reads the stream's `stats`
 * on a timer, so the data path does no extra work per chunk.
 */
export class ProgressReporter {
  readonly #source: ProgressSource;
  readonly #options: ProgressOptions;
  readonly #now: () => number;
  readonly #started: number;
  #lastAt: number;
  #lastBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(source: ProgressSource, options: ProgressOptions) {
    this.#source = source;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#started = this.#now();
    this.#lastAt = this.#started;
    this.#timer = setInterval(() => this.#report(), options.intervalMs);
    // Reports never keep a finished command alive.
    this.#timer.unref();
  }

  /** The final line: `done` after a complete transfer, `stopped` after an error or a signal. */
  stop(outcome: 'done' | 'stopped'): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    const { bytes, chunks } = this.#source.stats;
    const seconds = (this.#now() - this.#started) / 1000;
    const average = seconds > 0 ? bytes / seconds : 0;
    this.#emit(`${outcome}: ${amount(bytes, chunks)}, ${formatSeconds(seconds)}, ${formatRate(average)} average`, true);
  }

  #report(): void {
    const { bytes, chunks } = this.#source.stats;
    const now = this.#now();
    const seconds = (now - this.#lastAt) / 1000;
    const rate = seconds > 0 ? (bytes - this.#lastBytes) / seconds : 0;
    this.#lastAt = now;
    this.#lastBytes = bytes;
    this.#emit(`${amount(bytes, chunks)}, ${formatRate(rate)}, ${formatSeconds((now - this.#started) / 1000)}`, false);
  }

  #emit(text: string, final: boolean): void {
    const line = `filebus ${this.#options.role}: ${text}`;
    if (this.#options.terminal) this.#options.write(`\r${line}${CLEAR_TO_END}${final ? '\n' : ''}`);
    else this.#options.write(`${line}\n`);
  }
}

function amount(bytes: number, chunks: number): string {
  return `${formatBytes(bytes)} (${bytes} bytes) in ${chunks} chunk${chunks === 1 ? '' : 's'}`;
}
