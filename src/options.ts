import { FilebusError } from './errors.js';

/**
 * How chunks travel from producers to consumers.
 * - `lossy`: every consumer sees the newest chunk; chunks replaced before a
 *   consumer looked are skipped (the reference's default mode).
 * - `back-pressure`: each chunk goes to exactly one consumer, and the
 *   producer waits until it has been taken (the reference's `--back-pressure`).
 */
export type BusMode = 'lossy' | 'back-pressure';

export const BUS_MODES: readonly BusMode[] = ['lossy', 'back-pressure'];

/** Options shared by producers and consumers; each mirrors a CLI flag. */
export interface BusOptions {
  /** Path of the bus file (`--filename`). */
  filename: string;
  /** Delivery mode (`--back-pressure` / `--lossless` select `back-pressure`). Default `lossy`. */
  mode?: BusMode;
  /** Largest chunk a producer publishes, in bytes (`--block-size`). Default 65536. */
  blockSize?: number;
  /**
   * Seconds between checks when nothing signals a change (`--sleep-interval`).
   * With file monitoring on this is only a safety net. Default 0.1.
   */
  sleepInterval?: number;
  /** Wake on file system events (chokidar) rather than only polling. Default true. */
  fileMonitoring?: boolean;
  /** Cancels the producer or consumer, like calling `destroy()`. */
  signal?: AbortSignal;
}

export interface ProducerOptions extends BusOptions {
  /**
   * Accepted for compatibility with the reference's `--blocking-read`. Node
   * reads input through libuv either way, so it changes nothing here.
   */
  blockingRead?: boolean;
}

export type ConsumerOptions = BusOptions;

/** BusOptions with every default filled in and every value checked. */
export interface ResolvedBusOptions {
  readonly filename: string;
  readonly mode: BusMode;
  readonly blockSize: number;
  readonly sleepIntervalMs: number;
  readonly fileMonitoring: boolean;
  readonly signal: AbortSignal | undefined;
}

export const DEFAULT_BLOCK_SIZE = 65536;
export const DEFAULT_SLEEP_INTERVAL = 0.1;
/** Chunks are held in memory whole; this keeps one chunk well inside a Buffer. */
export const MAX_BLOCK_SIZE = 1 << 30;

function invalid(message: string): FilebusError {
  return new FilebusError('ERR_FILEBUS_INVALID_OPTION', message);
}

export function checkBlockSize(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw invalid(`--block-size must be a positive integer, got ${JSON.stringify(value)}`);
  }
  if (value > MAX_BLOCK_SIZE) throw invalid(`--block-size must be at most ${MAX_BLOCK_SIZE} bytes, got ${value}`);
  return value;
}

export function checkSleepInterval(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw invalid(`--sleep-interval must be a non-negative number of seconds, got ${JSON.stringify(value)}`);
  }
  return value;
}

export function resolveBusOptions(options: BusOptions): ResolvedBusOptions {
  if (typeof options !== 'object' || options === null) throw invalid('options must be an object');
  if (typeof options.filename !== 'string' || options.filename === '') throw invalid('--filename is required');
  if (options.filename.includes('\0')) throw invalid('--filename must not contain a NUL byte');
  const mode = options.mode ?? 'lossy';
  if (!BUS_MODES.includes(mode)) throw invalid(`mode must be one of ${BUS_MODES.join(', ')}, got ${JSON.stringify(mode)}`);
  return {
    filename: options.filename,
    mode,
    blockSize: checkBlockSize(options.blockSize ?? DEFAULT_BLOCK_SIZE),
    sleepIntervalMs: checkSleepInterval(options.sleepInterval ?? DEFAULT_SLEEP_INTERVAL) * 1000,
    fileMonitoring: options.fileMonitoring ?? true,
    signal: options.signal,
  };
}
