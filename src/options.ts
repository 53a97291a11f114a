import { FilebusError } from './errors.js';

/**
 * How chunks travel from producers to consumers.
 * - `lossy`: every consumer sees the newest chunk; chunks replaced before a
 *   consumer looked are skipped (the reference's default mode).
 * - `back-pressure`: each chunk goes to exactly one consumer, and the
 *   producer waits until it has been taken (the reference's `--back-pressure`).
 * - `multicast`: every consumer receives every chunk from where it joined,
 *   in order, from numbered checksummed segments kept within a window.
 */
export type BusMode = 'lossy' | 'back-pressure' | 'multicast';

export const BUS_MODES: readonly BusMode[] = ['lossy', 'back-pressure', 'multicast'];

/**
 * How a process learns that the bus changed.
 * - `auto`: file system events, except on network and FUSE file systems,
 *   whose events never report what other hosts do: there, polling.
 * - `events`: file system events (inotify, through fs.watch on the bus's directories).
 * - `chokidar`: as `events`, but lossy and back-pressure consumers wake on
 *   chokidar's events for FILE. chokidar re-reads the directory after every
 *   event, which doubled a consumer's CPU time in the benchmarks.
 * - `poll`: look every `sleepInterval`, nothing else.
 * Either way every wait also ends after `sleepInterval`.
 */
export type WatchMode = 'auto' | 'events' | 'chokidar' | 'poll';

export const WATCH_MODES: readonly WatchMode[] = ['auto', 'events', 'chokidar', 'poll'];

/**
 * The bus lock.
 * - `flock`: flock(2) on FILE.lock, the reference filebus's lock (default).
 * - `mkdir`: a directory FILE.lock.d created with mkdir(2) (proper-lockfile),
 *   refreshed while held and taken over when stale, for file systems that do
 *   not share flock between hosts.
 * Every process on one bus must use the same strategy.
 */
export type LockStrategy = 'flock' | 'mkdir';

export const LOCK_STRATEGIES: readonly LockStrategy[] = ['flock', 'mkdir'];

/** How much a multicast bus retains: a count of chunks, or bytes. */
export type WindowSize = { readonly chunks: number } | { readonly bytes: number };

/** Where a multicast consumer without a saved position starts. */
export type StartPosition = 'earliest' | 'latest' | number;

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
  /**
   * Wake on file system events (chokidar) rather than only polling. Default
   * true; false is `watch: 'poll'` (`--no-file-monitoring`).
   */
  fileMonitoring?: boolean;
  /** How changes are noticed (`--watch`): 'auto' (default), 'events', 'chokidar' or 'poll'. See WatchMode. */
  watch?: WatchMode;
  /** The bus lock (`--lock`): 'flock' (default, the reference's) or 'mkdir'. See LockStrategy. */
  lock?: LockStrategy;
  /** Cancels the producer or consumer, like calling `destroy()`. */
  signal?: AbortSignal;
  /**
   * Multicast: how much the bus retains (`--window`): a number of chunks, or
   * a string such as '256' (chunks), '64MiB', '512k', '1G' (bytes). Default 256 chunks.
   */
  window?: number | string;
  /**
   * Permission bits for every file and directory the bus creates
   * (`--file-mode 0600`); directories also get x wherever r is set. Default:
   * 0666 for files and 0777 for directories, less the umask.
   */
  fileMode?: number;
  /** Multicast: 'window' (default) deletes what every consumer has read and left the window; 'all' keeps everything. */
  retain?: 'window' | 'all';
  /**
   * Use FILE even when it shows no sign of being a bus (no FILE.lock, no
   * lock directory, no registration, no segments), although a producer
   * replaces it and a back-pressure consumer deletes it (`--take-over`).
   * Default false: such a FILE is refused with ERR_FILEBUS_NOT_A_BUS.
   */
  takeOver?: boolean;
}

export interface ProducerOptions extends BusOptions {
  /**
   * Accepted for compatibility with the reference's `--blocking-read`. Node
   * reads input through libuv either way, so it changes nothing here.
   */
  blockingRead?: boolean;
}

export interface ConsumerOptions extends BusOptions {
  /** Multicast: a named consumer keeps its position across restarts (`--name`). */
  name?: string;
  /**
   * Multicast: where a consumer without a saved position starts (`--from`):
   * 'earliest' retained segment, 'latest' (only chunks published from now
   * on), or a sequence number. Default: the oldest retained segment of the
   * current stream.
   */
  from?: StartPosition;
  /**
   * With `for await`: every chunk is a view of one buffer the consumer
   * reuses, valid only until the loop asks for the next chunk. Saves an
   * allocation per chunk and keeps memory flat on long streams; copy a
   * chunk (`Buffer.from(chunk)`) to keep it. Ignored when the consumer is
   * read as a stream (piped, 'data' events), where chunks must outlive the
   * next read. Default false.
   */
  reuseBuffers?: boolean;
  /**
   * Multicast, anonymous consumers read with `for await`: segments already
   * waiting on the bus are emitted together as one chunk of up to 1 MiB,
   * for consumers that treat the bus as a byte stream (the CLI does) and
   * gain from one write per run instead of one per segment. Chunk
   * boundaries then no longer match the producer's. Ignored for named
   * consumers, whose restart repeats at most one segment, and in the
   * other modes. Default false.
   */
  coalesce?: boolean;
}

/**
 * BusOptions with every default filled in and every value checked, frozen.
 * A Producer or Consumer makes it once, in its constructor, and everything
 * below it (openBus, the engines) reads this instead of checking again.
 */
export interface ResolvedBusOptions {
  readonly filename: string;
  readonly mode: BusMode;
  readonly blockSize: number;
  readonly sleepIntervalMs: number;
  readonly watch: WatchMode;
  readonly lock: LockStrategy;
  readonly signal: AbortSignal | undefined;
  readonly window: WindowSize;
  readonly retainAll: boolean;
  readonly fileMode: number | undefined;
  readonly takeOver: boolean;
}

export const DEFAULT_BLOCK_SIZE = 65536;
export const DEFAULT_SLEEP_INTERVAL = 0.1;
export const DEFAULT_WINDOW_CHUNKS = 256;
export const DEFAULT_WATCH: WatchMode = 'auto';
export const DEFAULT_LOCK: LockStrategy = 'flock';
export const DEFAULT_MODE: BusMode = 'lossy';
/** Multicast retention: 'window' deletes what every consumer has read and left the window; 'all' keeps everything. */
export const RETAIN_CHOICES: readonly ('window' | 'all')[] = ['window', 'all'];
export const DEFAULT_RETAIN = 'window';
/** Chunks are held in memory whole; this keeps one chunk well inside a Buffer. */
export const MAX_BLOCK_SIZE = 1 << 30;

/*
 * Each check below names the option the way its caller knows it: the
 * library's own name (`blockSize`) and the value as JSON by default, or the
 * flag or variable the CLI read (`--block-size`, `FILEBUS_BLOCK_SIZE`) and
 * the text as typed, which the CLI passes as `option` and `shown`.
 */

/** `<option> <rule>, got <value>`: the one shape of every refusal of an option's value. */
export function invalidOption(option: string, rule: string, shown: string): FilebusError {
  return new FilebusError('ERR_FILEBUS_INVALID_OPTION', `${option} ${rule}, got ${shown}`);
}

function invalid(message: string): FilebusError {
  return new FilebusError('ERR_FILEBUS_INVALID_OPTION', message);
}

function json(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

/** 'a, b or c': the choices an error offers. */
function orList(choices: readonly string[]): string {
  return choices.length < 2 ? choices.join('') : `${choices.slice(0, -1).join(', ')} or ${choices.at(-1)!}`;
}

function choice<T extends string>(value: unknown, choices: readonly T[], option: string, shown: string | undefined): T {
  if (!choices.includes(value as T)) throw invalidOption(option, `must be ${orList(choices)}`, shown ?? json(value));
  return value as T;
}

export function checkBlockSize(value: unknown, option = 'blockSize', shown?: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw invalidOption(option, 'must be a positive integer', shown ?? json(value));
  }
  if (value > MAX_BLOCK_SIZE) throw invalidOption(option, `must be at most ${MAX_BLOCK_SIZE} bytes`, shown ?? json(value));
  return value;
}

export function checkSleepInterval(value: unknown, option = 'sleepInterval', shown?: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw invalidOption(option, 'must be a non-negative number of seconds', shown ?? json(value));
  }
  return value;
}

const UNITS: Record<string, number> = {
  b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3,
};

/** '256' or 256: chunks; '64MiB', '512k', '100b': bytes. */
export function parseWindow(value: unknown, option = 'window', shown?: string): WindowSize {
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value) && value > 0) return Object.freeze({ chunks: value });
  } else if (typeof value === 'string') {
    const match = /^\s*(\d+)\s*([a-zA-Z]*)\s*$/.exec(value);
    if (match) {
      const count = Number(match[1]);
      const unit = match[2]!.toLowerCase();
      if (unit === '' && Number.isSafeInteger(count) && count > 0) return Object.freeze({ chunks: count });
      const scale = UNITS[unit];
      if (scale !== undefined && count > 0 && Number.isSafeInteger(count * scale)) return Object.freeze({ bytes: count * scale });
    }
  }
  throw invalidOption(option, 'must be a positive number of chunks (e.g. 256) or a size in bytes (e.g. 64MiB)', shown ?? json(value));
}

export function checkWatch(value: unknown, option = 'watch', shown?: string): WatchMode {
  return choice(value, WATCH_MODES, option, shown);
}

export function checkLock(value: unknown, option = 'lock', shown?: string): LockStrategy {
  return choice(value, LOCK_STRATEGIES, option, shown);
}

export function checkRetain(value: unknown, option = 'retain', shown?: string): 'window' | 'all' {
  return choice(value, RETAIN_CHOICES, option, shown);
}

export function checkFileMode(value: unknown, option = 'fileMode', shown?: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0o777) {
    throw invalidOption(option, 'must be permission bits from 0000 to 0777', shown ?? (typeof value === 'number' ? `0${value.toString(8)}` : json(value)));
  }
  return value;
}

export function checkStartPosition(value: unknown, option = 'from', shown?: string): StartPosition | undefined {
  if (value === undefined || value === 'earliest' || value === 'latest') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 1) return value;
  if (typeof value === 'string' && /^\d+$/.test(value) && Number(value) >= 1 && Number.isSafeInteger(Number(value))) return Number(value);
  throw invalidOption(option, 'must be earliest, latest or a segment number (1 or more)', shown ?? json(value));
}

/** Checks every option and fills in every default, once; the result is frozen. */
export function resolveBusOptions(options: BusOptions): ResolvedBusOptions {
  if (typeof options !== 'object' || options === null) throw invalid('options must be an object');
  // Each read once: a getter, or the caller changing the object, cannot make what was checked differ from what is used.
  const { filename, mode, blockSize, sleepInterval, fileMonitoring, watch, lock, signal, window, fileMode, retain, takeOver } = options;
  if (typeof filename !== 'string' || filename === '') throw invalid('filename is required');
  if (filename.includes('\0')) throw invalid('filename must not contain a NUL byte');
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalid('signal must be an AbortSignal');
  if (fileMonitoring !== undefined && typeof fileMonitoring !== 'boolean') {
    throw invalidOption('fileMonitoring', 'must be true or false', json(fileMonitoring));
  }
  if (takeOver !== undefined && typeof takeOver !== 'boolean') throw invalidOption('takeOver', 'must be true or false', json(takeOver));
  return Object.freeze({
    filename,
    mode: choice(mode ?? DEFAULT_MODE, BUS_MODES, 'mode', undefined),
    blockSize: checkBlockSize(blockSize ?? DEFAULT_BLOCK_SIZE),
    sleepIntervalMs: checkSleepInterval(sleepInterval ?? DEFAULT_SLEEP_INTERVAL) * 1000,
    watch: resolveWatch(watch, fileMonitoring),
    lock: checkLock(lock ?? DEFAULT_LOCK),
    signal,
    window: parseWindow(window ?? DEFAULT_WINDOW_CHUNKS),
    retainAll: checkRetain(retain ?? DEFAULT_RETAIN) === 'all',
    fileMode: checkFileMode(fileMode),
    takeOver: takeOver ?? false,
  });
}

/** `fileMonitoring: false` predates `watch` and means polling; asking for events as well is a contradiction. */
function resolveWatch(watch: unknown, fileMonitoring: boolean | undefined): WatchMode {
  if (watch === undefined) return fileMonitoring === false ? 'poll' : DEFAULT_WATCH;
  const checked = checkWatch(watch);
  if (fileMonitoring === false && checked !== 'poll') {
    throw invalid(`fileMonitoring: false means watch: 'poll'; it contradicts watch: ${json(checked)}`);
  }
  return checked;
}
