import {
  DEFAULT_BLOCK_SIZE, DEFAULT_SLEEP_INTERVAL, LOCK_STRATEGIES, MAX_BLOCK_SIZE, WATCH_MODES, parseWindow, type BusMode, type LockStrategy, type WatchMode,
} from '../options.js';
import { environmentBoolean, readEnvironment, type FromEnvironment } from './environment.js';
import { quickParse, type ParsedArgs } from './quick-parse.js';

export type CliCommand = 'producer' | 'consumer' | 'remove-consumer' | 'status';

export interface CliArgs {
  readonly command: CliCommand;
  readonly filename: string;
  readonly mode: BusMode;
  readonly blockSize: number;
  readonly sleepInterval: number;
  readonly watch: WatchMode;
  readonly lock: LockStrategy;
  readonly verbosity: number;
  readonly blockingRead: boolean;
  readonly window: string | undefined;
  readonly retain: 'window' | 'all';
  /** consumer --name, or the NAME of remove-consumer. */
  readonly name: string | undefined;
  readonly from: string | undefined;
  readonly fileMode: number | undefined;
  /** status --json */
  readonly json: boolean;
  /** producer and consumer --progress, and its period. */
  readonly progress: boolean;
  readonly progressIntervalMs: number;
}

/** A command line filebus cannot run: exit code 2, one line on stderr. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The argument yargs' completion script passes; everything after it is a command line being typed. */
const COMPLETION_FLAG = '--get-yargs-completions';

/** A flag's value and what to call its source in an error: `--block-size` or `FILEBUS_BLOCK_SIZE`. */
interface Sourced {
  readonly text: string;
  readonly label: string;
}

export const DEFAULT_PROGRESS_INTERVAL = 1;

export interface ParseOptions {
  /** The environment FILEBUS_* variables are read from. */
  readonly env?: NodeJS.ProcessEnv;
  /** Let yargs read every command line, not only those the quick path does not take (a test seam). */
  readonly yargsOnly?: boolean;
}

export async function parseArgs(argv: readonly string[], version: string, options: ParseOptions = {}): Promise<CliArgs> {
  const env = options.env ?? process.env;
  const given = scanFlags(argv);
  const parsed = (options.yargsOnly ? undefined : quickParse(argv))
    ?? (await import('./define-cli.js')).parseWithYargs(argv, version, (message) => new UsageError(message));
  const [command, ...extra] = parsed._.map(String);
  // Only a producer or consumer uses the transfer flags: other commands take
  // nothing but FILEBUS_FILENAME from the environment.
  const transfers = command === 'producer' || command === 'consumer';
  const environment = readEnvironment(env);
  /** A string option from the command line, else from its environment variable. */
  const sourced = (option: string): Sourced | undefined => {
    const text = single(parsed, option);
    if (text !== undefined) return { text, label: `--${option}` };
    const fromEnv = transfers || option === 'filename' || option === 'lock' ? environment.get(option) : undefined;
    return fromEnv && { text: fromEnv.text, label: fromEnv.variable };
  };
  /** A boolean flag from the command line when given there (also as --no-X), else from the environment. */
  const flag = (option: string, fallback: boolean): boolean => {
    if (given.has(option)) return parsed[option] === true;
    const fromEnv = transfers ? environment.get(option) : undefined;
    return fromEnv ? isTrue(fromEnv) : fallback;
  };
  // Values first: `--block-size producer` is a missing number, not a missing command.
  const blockSize = parseBlockSize(sourced('block-size'));
  const sleepInterval = parseSleepInterval(sourced('sleep-interval'));
  const fileMode = parseFileMode(sourced('file-mode'));
  const progressIntervalMs = parseProgressInterval(sourced('progress-interval'));
  const filename = sourced('filename')?.text;
  if (command === undefined) throw new UsageError('a command is required: producer, consumer, status, remove-consumer or completion');
  if (command !== 'producer' && command !== 'consumer' && command !== 'remove-consumer' && command !== 'status') {
    throw new UsageError(`unknown command '${command}' (expected producer, consumer, status, remove-consumer or completion)`);
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}' after ${command}`);
  if (filename === undefined || filename === '') throw new UsageError('--filename is required');
  const { backPressure, multicast } = chooseMode(given, parsed, transfers ? environment : new Map());
  const isMulticast = multicast || command === 'remove-consumer';
  const window = single(parsed, 'window') ?? (isMulticast ? environmentWindow(sourced('window')) : undefined);
  const from = single(parsed, 'from');
  const name = single(parsed, 'name');
  if (!isMulticast) {
    const stray = [['window', window], ['from', from], ['name', name]].find(([, value]) => value !== undefined);
    if (stray) throw new UsageError(`--${stray[0]} applies only with --multicast`);
    if (parsed['retain'] === 'all') throw new UsageError('--retain applies only with --multicast');
  }
  // --retain has a yargs default, so whether it was typed comes from the scan.
  const retainFromEnv = !given.has('retain') && isMulticast && transfers ? environment.get('retain') : undefined;
  const retain = retainFromEnv ? environmentRetain({ text: retainFromEnv.text, label: retainFromEnv.variable }) : parsed['retain'];
  if (given.has('json') && command !== 'status' && parsed['json'] === true) throw new UsageError('--json applies only to status');
  if (!transfers && (given.has('progress') || given.has('progress-interval'))) {
    throw new UsageError('--progress applies only to producer and consumer');
  }
  // Asking for a report period on the command line asks for the reports.
  const progress = transfers && (given.has('progress-interval') && !given.has('progress') ? true : flag('progress', false));
  return {
    command,
    filename,
    mode: isMulticast ? 'multicast' : backPressure ? 'back-pressure' : 'lossy',
    window,
    retain: retain === 'all' && isMulticast ? 'all' : 'window',
    name,
    from,
    fileMode,
    blockSize,
    sleepInterval,
    watch: parseWatch(sourced('watch'), flag('file-monitoring', true)),
    lock: parseLock(sourced('lock')),
    verbosity: Number(parsed['verbose'] ?? 0),
    blockingRead: Boolean(parsed['blocking-read']),
    json: parsed['json'] === true,
    progress,
    progressIntervalMs,
  };
}

/**
 * The mode flags on the command line decide alone when any is there; the
 * environment's only count when none is.
 */
function chooseMode(given: ReadonlySet<string>, parsed: ParsedArgs, environment: ReadonlyMap<string, FromEnvironment>): { backPressure: boolean; multicast: boolean } {
  let backPressure: boolean;
  let multicast: boolean;
  if (given.has('back-pressure') || given.has('multicast')) {
    backPressure = parsed['back-pressure'] === true || parsed['lossless'] === true;
    multicast = parsed['multicast'] === true;
    if (backPressure && multicast) throw new UsageError('--multicast and --back-pressure are different modes; choose one');
  } else {
    const bp = environment.get('back-pressure');
    const mc = environment.get('multicast');
    backPressure = bp !== undefined && isTrue(bp);
    multicast = mc !== undefined && isTrue(mc);
    if (backPressure && multicast) throw new UsageError(`${mc!.variable} and ${bp!.variable} select different modes; set one`);
  }
  return { backPressure, multicast };
}

function isTrue(value: FromEnvironment): boolean {
  return environmentBoolean(value, (message) => new UsageError(message));
}

function environmentWindow(value: Sourced | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    parseWindow(value.text);
  } catch {
    throw new UsageError(`${value.label} must be a positive number of chunks (e.g. 256) or a size in bytes (e.g. 64MiB), got '${value.text}'`);
  }
  return value.text;
}

function environmentRetain(value: Sourced): string {
  if (value.text !== 'window' && value.text !== 'all') throw new UsageError(`${value.label} must be window or all, got '${value.text}'`);
  return value.text;
}

const KNOWN_OPTIONS = new Set([
  'filename', 'back-pressure', 'lossless', 'block-size', 'sleep-interval', 'file-monitoring', 'no-file-monitoring',
  'verbose', 'v', 'version', 'help', 'h', 'blocking-read', 'no-back-pressure', 'no-lossless', 'no-blocking-read',
  'multicast', 'no-multicast', 'window', 'retain', 'name', 'from', 'file-mode', 'mode',
  'json', 'no-json', 'progress', 'no-progress', 'progress-interval', 'watch', 'lock',
]);

/** Other spellings of a flag, by the name the rest of parseArgs knows it under. */
const CANONICAL: Record<string, string> = { lossless: 'back-pressure', mode: 'file-mode', v: 'verbose', h: 'help' };

/**
 * The flags on the command line, by canonical name (`--no-multicast` and
 * `--lossless` count as given too), so the environment fills in only what
 * is absent. Unknown flags are rejected here: yargs would read
 * `--bogus producer` as an option with a value and then complain about a
 * missing command; naming the unknown option is clearer. A command line
 * being completed is not checked: it is still being typed.
 */
function scanFlags(argv: readonly string[]): Set<string> {
  const given = new Set<string>();
  if (argv.includes(COMPLETION_FLAG)) return given;
  const note = (name: string): void => {
    const bare = name.startsWith('no-') && KNOWN_OPTIONS.has(name.slice(3)) ? name.slice(3) : name;
    given.add(CANONICAL[bare] ?? bare);
  };
  for (const token of argv) {
    if (token === '--') break;
    if (!token.startsWith('-') || token === '-') continue;
    if (token.startsWith('--')) {
      const name = token.slice(2).split('=')[0]!;
      if (!KNOWN_OPTIONS.has(name)) throw new UsageError(`unknown option '--${name}'`);
      note(name);
    } else if (/^-[0-9.]/.test(token)) {
      continue; // a negative number, e.g. --sleep-interval -1: judged as a value later
    } else {
      for (const letter of token.slice(1)) {
        if (!KNOWN_OPTIONS.has(letter)) throw new UsageError(`unknown option '-${letter}'`);
        note(letter);
      }
    }
  }
  return given;
}

/** A string option given at most once (yargs makes an array of repeats). */
function single(parsed: ParsedArgs, name: string): string | undefined {
  const value = parsed[name];
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw new UsageError(`--${name} may be given only once`);
  return String(value);
}

function parseWatch(value: Sourced | undefined, fileMonitoring: boolean): WatchMode {
  if (value !== undefined && !WATCH_MODES.includes(value.text as WatchMode)) throw new UsageError(`${value.label} must be auto, events, chokidar or poll, got '${value.text}'`);
  if (!fileMonitoring) {
    if (value !== undefined && value.text !== 'poll') throw new UsageError(`--no-file-monitoring means --watch poll; it contradicts ${value.label} ${value.text}`);
    return 'poll';
  }
  return (value?.text ?? 'auto') as WatchMode;
}

function parseLock(value: Sourced | undefined): LockStrategy {
  if (value === undefined) return 'flock';
  if (!LOCK_STRATEGIES.includes(value.text as LockStrategy)) throw new UsageError(`${value.label} must be flock or mkdir, got '${value.text}'`);
  return value.text as LockStrategy;
}

function parseFileMode(value: Sourced | undefined): number | undefined {
  if (value === undefined) return undefined;
  const { text, label } = value;
  if (!/^0?[0-7]{3}$/.test(text.trim())) throw new UsageError(`${label} must be octal permission bits such as 0600 or 644, got '${text}'`);
  return parseInt(text.trim(), 8);
}

function parseBlockSize(value: Sourced | undefined): number {
  if (value === undefined) return DEFAULT_BLOCK_SIZE;
  const { text, label } = value;
  const number = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(number) || number <= 0) throw new UsageError(`${label} must be a positive integer, got '${text}'`);
  if (number > MAX_BLOCK_SIZE) throw new UsageError(`${label} must be at most ${MAX_BLOCK_SIZE} bytes, got '${text}'`);
  return number;
}

function parseSeconds(value: Sourced): number {
  const { text, label } = value;
  const number = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(number)) throw new UsageError(`${label} must be a number of seconds, got '${text}'`);
  if (number < 0) throw new UsageError(`${label} must not be negative, got '${text}'`);
  return number;
}

function parseSleepInterval(value: Sourced | undefined): number {
  return value === undefined ? DEFAULT_SLEEP_INTERVAL : parseSeconds(value);
}

function parseProgressInterval(value: Sourced | undefined): number {
  if (value === undefined) return DEFAULT_PROGRESS_INTERVAL * 1000;
  const seconds = parseSeconds(value);
  // Below a millisecond a timer cannot keep up anyway; zero would spin.
  if (seconds < 0.001) throw new UsageError(`${value.label} must be at least 0.001 seconds, got '${value.text}'`);
  return seconds * 1000;
}
