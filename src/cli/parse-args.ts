import yargs, { type Argv } from 'yargs';
import { DEFAULT_BLOCK_SIZE, DEFAULT_SLEEP_INTERVAL, LOCK_STRATEGIES, WATCH_MODES, type BusMode, type LockStrategy, type WatchMode } from '../options.js';

export type CliCommand = 'producer' | 'consumer' | 'remove-consumer';

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
}

/** A command line filebus cannot run: exit code 2, one line on stderr. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const DESCRIPTION = 'A multicast named pipe backed by a regular file.';

/** The whole command line interface, as data: --help, docs and completion come from here. */
export function defineCli(argv: readonly string[], version: string): Argv {
  return yargs([...argv])
    .scriptName('filebus')
    .usage(`$0 [options] <producer|consumer>\n\n${DESCRIPTION}\n\n` +
      '  some-command | filebus --filename /tmp/x producer\n' +
      '  filebus --filename /tmp/x consumer')
    .command('producer', 'read standard input and publish it on the bus', (y) => y
      .option('blocking-read', {
        type: 'boolean',
        default: false,
        describe: 'accepted for compatibility with the reference filebus; input is read the same way either way',
      }))
    .command('consumer', 'write the chunks on the bus to standard output', (y) => y
      .option('name', {
        type: 'string',
        requiresArg: true,
        describe: 'multicast: a named consumer keeps its position across restarts and holds retention until removed',
      })
      .option('from', {
        type: 'string',
        requiresArg: true,
        describe: 'multicast: where to start without a saved position: earliest, latest or a segment number [default: oldest retained of the current stream]',
      }))
    .command('remove-consumer <name>', 'multicast: forget a named consumer and release what it retains')
    .option('filename', { type: 'string', requiresArg: true, describe: 'path of the bus file (required)' })
    .option('back-pressure', {
      type: 'boolean',
      default: false,
      describe: 'lossless, one consumer per chunk: the producer waits until each chunk is taken',
    })
    .option('lossless', { type: 'boolean', default: false, describe: 'an alias for --back-pressure' })
    .option('multicast', {
      type: 'boolean',
      default: false,
      describe: 'lossless multicast: every consumer gets every chunk from where it joined, from numbered segments in FILE.segments/',
    })
    .option('window', {
      type: 'string',
      requiresArg: true,
      describe: 'multicast: chunks (e.g. 256) or bytes (e.g. 64MiB) retained; the producer waits for a live consumer a full window behind [default: 256]',
    })
    .option('retain', {
      choices: ['window', 'all'],
      default: 'window',
      describe: 'multicast: all keeps every segment (an archive that cat FILE.segments/* reassembles)',
    })
    .option('block-size', {
      type: 'string',
      requiresArg: true,
      describe: `largest chunk in bytes [default: ${DEFAULT_BLOCK_SIZE}]`,
    })
    .option('sleep-interval', {
      type: 'string',
      requiresArg: true,
      describe: `seconds between checks when no event arrives; the polling period with --no-file-monitoring [default: ${DEFAULT_SLEEP_INTERVAL}]`,
    })
    .option('file-monitoring', {
      type: 'boolean',
      default: true,
      describe: 'wake on file system events; --no-file-monitoring polls every --sleep-interval instead (= --watch poll)',
    })
    .option('watch', {
      type: 'string',
      requiresArg: true,
      describe: 'auto: file system events, but polling every --sleep-interval on network and FUSE file systems (whose events miss other hosts); events; poll [default: auto]',
    })
    .option('lock', {
      type: 'string',
      requiresArg: true,
      describe: 'flock: flock(2) on FILE.lock, as the reference filebus; mkdir: a lock directory FILE.lock.d, for file systems that do not share flock between hosts. Every process on a bus must use the same [default: flock]',
    })
    .option('file-mode', {
      alias: 'mode',
      type: 'string',
      requiresArg: true,
      describe: 'octal permission bits for every file and directory the bus creates, e.g. 0600 (directories also get x where r is set) [default: 0666/0777 less the umask]',
    })
    .option('verbose', { alias: 'v', type: 'count', describe: 'log what filebus does to stderr (repeat for more)' })
    .version(version)
    .help()
    .alias('help', 'h')
    // A fixed width: asking process.stdout for its columns would turn fd 1
    // non-blocking, and a consumer writing to a slow pipe would then spin on EAGAIN.
    .wrap(100)
    .epilogue('Exit status: 0 on success, 1 when the bus cannot be read or written, 2 for a bad command line or path.');
}

export function parseArgs(argv: readonly string[], version: string): CliArgs {
  rejectUnknownOptions(argv);
  const parsed = defineCli(argv, version)
    .fail((message, error) => {
      throw new UsageError(message || error?.message || 'invalid command line');
    })
    .parseSync() as Record<string, unknown> & { _: (string | number)[] };
  // Values first: `--block-size producer` is a missing number, not a missing command.
  const blockSize = parseBlockSize(single(parsed, 'block-size'));
  const sleepInterval = parseSleepInterval(single(parsed, 'sleep-interval'));
  const filename = single(parsed, 'filename');
  const [command, ...extra] = parsed._.map(String);
  if (command === undefined) throw new UsageError('a command is required: producer or consumer');
  if (command !== 'producer' && command !== 'consumer' && command !== 'remove-consumer') {
    throw new UsageError(`unknown command '${command}' (expected producer or consumer)`);
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}' after ${command}`);
  if (filename === undefined || filename === '') throw new UsageError('--filename is required');
  const backPressure = parsed['back-pressure'] === true || parsed['lossless'] === true;
  const multicast = parsed['multicast'] === true || command === 'remove-consumer';
  if (backPressure && multicast) throw new UsageError('--multicast and --back-pressure are different modes; choose one');
  const window = single(parsed, 'window');
  const from = single(parsed, 'from');
  const name = single(parsed, 'name');
  if (!multicast) {
    const stray = [['window', window], ['from', from], ['name', name]].find(([, value]) => value !== undefined);
    if (stray) throw new UsageError(`--${stray[0]} applies only with --multicast`);
    if (parsed['retain'] === 'all') throw new UsageError('--retain applies only with --multicast');
  }
  return {
    command,
    filename,
    mode: multicast ? 'multicast' : backPressure ? 'back-pressure' : 'lossy',
    window,
    retain: parsed['retain'] === 'all' ? 'all' : 'window',
    name,
    from,
    fileMode: parseFileMode(single(parsed, 'file-mode')),
    blockSize,
    sleepInterval,
    watch: parseWatch(single(parsed, 'watch'), parsed['file-monitoring'] !== false),
    lock: parseLock(single(parsed, 'lock')),
    verbosity: Number(parsed['verbose'] ?? 0),
    blockingRead: Boolean(parsed['blocking-read']),
  };
}

const KNOWN_OPTIONS = new Set([
  'filename', 'back-pressure', 'lossless', 'block-size', 'sleep-interval', 'file-monitoring', 'no-file-monitoring',
  'verbose', 'v', 'version', 'help', 'h', 'blocking-read', 'no-back-pressure', 'no-lossless', 'no-blocking-read',
  'multicast', 'no-multicast', 'window', 'retain', 'name', 'from', 'file-mode', 'mode', 'watch', 'lock',
]);

/**
 * yargs would read `--bogus producer` as an option with a value and then
 * complain about a missing command; naming the unknown option is clearer.
 */
function rejectUnknownOptions(argv: readonly string[]): void {
  for (const token of argv) {
    if (token === '--') return;
    if (!token.startsWith('-') || token === '-') continue;
    if (token.startsWith('--')) {
      const name = token.slice(2).split('=')[0]!;
      if (!KNOWN_OPTIONS.has(name)) throw new UsageError(`unknown option '--${name}'`);
    } else if (/^-[0-9.]/.test(token)) {
      continue; // a negative number, e.g. --sleep-interval -1: judged as a value later
    } else {
      for (const letter of token.slice(1)) {
        if (!KNOWN_OPTIONS.has(letter)) throw new UsageError(`unknown option '-${letter}'`);
      }
    }
  }
}

/** A string option given at most once (yargs makes an array of repeats). */
function single(parsed: Record<string, unknown>, name: string): string | undefined {
  const value = parsed[name];
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw new UsageError(`--${name} may be given only once`);
  return String(value);
}

function parseWatch(text: string | undefined, fileMonitoring: boolean): WatchMode {
  if (text !== undefined && !WATCH_MODES.includes(text as WatchMode)) throw new UsageError(`--watch must be auto, events or poll, got '${text}'`);
  if (!fileMonitoring) {
    if (text !== undefined && text !== 'poll') throw new UsageError(`--no-file-monitoring means --watch poll; it contradicts --watch ${text}`);
    return 'poll';
  }
  return (text ?? 'auto') as WatchMode;
}

function parseLock(text: string | undefined): LockStrategy {
  if (text === undefined) return 'flock';
  if (!LOCK_STRATEGIES.includes(text as LockStrategy)) throw new UsageError(`--lock must be flock or mkdir, got '${text}'`);
  return text as LockStrategy;
}

function parseFileMode(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^0?[0-7]{3}$/.test(text.trim())) throw new UsageError(`--file-mode must be octal permission bits such as 0600 or 644, got '${text}'`);
  return parseInt(text.trim(), 8);
}

function parseBlockSize(text: string | undefined): number {
  if (text === undefined) return DEFAULT_BLOCK_SIZE;
  const value = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value <= 0) throw new UsageError(`--block-size must be a positive integer, got '${text}'`);
  return value;
}

function parseSleepInterval(text: string | undefined): number {
  if (text === undefined) return DEFAULT_SLEEP_INTERVAL;
  const value = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(value)) throw new UsageError(`--sleep-interval must be a number of seconds, got '${text}'`);
  if (value < 0) throw new UsageError(`--sleep-interval must not be negative, got '${text}'`);
  return value;
}
