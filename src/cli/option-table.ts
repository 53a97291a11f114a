/**
 * Every flag of the command line, one row each: its name and other
 * spellings, what kind of value it takes and in what unit, the FILEBUS_*
 * variable that sets it, the commands that take it, its default, its help
 * text, and how its text becomes a value (or is refused, naming the flag or
 * variable it came from). Everything else reads this table: yargs'
 * definition (define-cli.ts), the quick path (quick-parse.ts), the checks of
 * parse-args.ts and the environment reader (environment.ts). Adding a flag
 * is adding a row: one that names its library option (`library`) reaches
 * the Producer or Consumer with no other code; only flags whose meaning
 * combines with others (the mode, --watch, --retain, --progress) are read
 * in parse-args.ts.
 *
 * The rules a value must follow live with the feature they belong to: the
 * bus options' in src/options.ts, which the library applies too, and
 * --progress-interval's in progress.ts. Here they are only applied to text.
 */
import {
  DEFAULT_BLOCK_SIZE, DEFAULT_LOCK, DEFAULT_RETAIN, DEFAULT_SLEEP_INTERVAL, DEFAULT_WATCH, DEFAULT_WINDOW_CHUNKS, RETAIN_CHOICES,
  checkBlockSize, checkLock, checkRetain, checkStartPosition, checkWatch, parseWindow,
} from '../options.js';
import { DEFAULT_PROGRESS_INTERVAL, checkProgressInterval } from './progress.js';
import { UsageError, asUsage } from './usage-error.js';

export type CliCommand = 'producer' | 'consumer' | 'remove-consumer' | 'status';

/** The library options a row may stand for one to one. */
export type LibraryOption = 'blockSize' | 'sleepInterval' | 'lock' | 'fileMode' | 'window' | 'takeOver';

/** Turns the text a flag or variable gave into its value, or refuses it with a UsageError naming `label`. */
export type ParseText<T> = (text: string, label: string) => T;

interface Row {
  /** Other spellings yargs takes for the same option, without dashes. */
  readonly aliases?: readonly string[];
  /**
   * The commands that take it; absent: every command. Only these read its
   * environment variable.
   */
  readonly commands?: readonly CliCommand[];
  /**
   * 'commands': yargs declares it under its commands only, so their help
   * lists it and yargs reads it only after the command word. Absent: declared
   * for every command, and parse-args.ts refuses or ignores it where it does
   * not apply.
   */
  readonly scope?: 'commands';
  /** Means something only on a multicast bus: refused in the other modes, its variable ignored there. */
  readonly multicastOnly?: true;
  /** The variable that sets it when the command line does not. */
  readonly env?: `FILEBUS_${string}`;
  readonly unit?: 'bytes' | 'seconds' | 'chunks or bytes' | 'permission bits';
  /**
   * The library option (BusOptions) its value is, as it is: parse-args
   * hands it to the Producer or Consumer with no code of its own, so such
   * a flag is one row. Flags whose meaning combines with others (the
   * mode, --watch with --no-file-monitoring, --retain) are read in parse-args.
   */
  readonly library?: LibraryOption;
  /** The help text; the default and the variable are appended to it. */
  readonly help: string;
}

/** An option with a value (`--block-size 4096`), read as a string and turned into its value by `parse`. */
export interface ValueRow<T> extends Row {
  readonly kind: 'value';
  readonly parse: ParseText<T>;
  /**
   * What applies when neither the command line nor the environment gives a
   * value, shown in the help as `[default: ...]`. parse-args.ts or the
   * library applies it: yargs never sees it, so that a value from the
   * environment can take its place.
   */
  readonly default?: string | number;
  /** The help's `[default: ...]` where the default is no single value. */
  readonly defaultHelp?: string;
}

export interface BooleanRow extends Row {
  readonly kind: 'boolean';
  readonly default: boolean;
  /** Another name for that option's flag, listed separately in the help. */
  readonly sameAs?: string;
}

/** An option yargs checks against its choices itself. */
export interface ChoiceRow<T extends string> extends Row {
  readonly kind: 'choice';
  readonly choices: readonly T[];
  readonly default: T;
  /** For the environment's value, which yargs never sees. */
  readonly parse: ParseText<T>;
}

/** A flag counted each time it is given (-vv). */
export interface CountRow extends Row {
  readonly kind: 'count';
}

export type OptionRow = ValueRow<unknown> | BooleanRow | ChoiceRow<string> | CountRow;

const TRANSFERS: readonly CliCommand[] = ['producer', 'consumer'];

export const OPTIONS = {
  filename: {
    kind: 'value',
    env: 'FILEBUS_FILENAME',
    help: 'path of the bus file (required)',
    parse: (text) => text,
  },
  'back-pressure': {
    kind: 'boolean',
    default: false,
    commands: TRANSFERS,
    env: 'FILEBUS_BACK_PRESSURE',
    help: 'lossless, one consumer per chunk: the producer waits until each chunk is taken',
  },
  lossless: {
    kind: 'boolean',
    default: false,
    sameAs: 'back-pressure',
    commands: TRANSFERS,
    help: 'an alias for --back-pressure',
  },
  multicast: {
    kind: 'boolean',
    default: false,
    commands: TRANSFERS,
    env: 'FILEBUS_MULTICAST',
    help: 'lossless multicast: every consumer gets every chunk from where it joined, from numbered segments in FILE.segments/',
  },
  window: {
    kind: 'value',
    library: 'window',
    unit: 'chunks or bytes',
    default: DEFAULT_WINDOW_CHUNKS,
    commands: TRANSFERS,
    multicastOnly: true,
    env: 'FILEBUS_WINDOW',
    help: 'multicast: chunks (e.g. 256) or bytes (e.g. 64MiB) retained; the producer waits for a live consumer a full window behind',
    // The library takes the text as it is (BusOptions.window); checking it
    // here words a refusal for the flag or variable it came from.
    parse: (text, label) => {
      asUsage(() => parseWindow(text, label, quoted(text)));
      return text;
    },
  },
  retain: {
    kind: 'choice',
    choices: RETAIN_CHOICES,
    default: DEFAULT_RETAIN,
    commands: TRANSFERS,
    multicastOnly: true,
    env: 'FILEBUS_RETAIN',
    help: 'multicast: all keeps every segment (an archive that cat FILE.segments/* reassembles)',
    parse: (text, label) => asUsage(() => checkRetain(text, label, quoted(text))),
  },
  'block-size': {
    kind: 'value',
    library: 'blockSize',
    unit: 'bytes',
    default: DEFAULT_BLOCK_SIZE,
    commands: TRANSFERS,
    env: 'FILEBUS_BLOCK_SIZE',
    help: 'largest chunk in bytes',
    parse: (text, label) => asUsage(() => checkBlockSize(/^\s*\d+\s*$/.test(text) ? Number(text) : NaN, label, quoted(text))),
  },
  'sleep-interval': {
    kind: 'value',
    library: 'sleepInterval',
    unit: 'seconds',
    default: DEFAULT_SLEEP_INTERVAL,
    commands: TRANSFERS,
    env: 'FILEBUS_SLEEP_INTERVAL',
    help: 'seconds between checks when no event arrives; the polling period with --no-file-monitoring',
    parse: seconds,
  },
  'file-monitoring': {
    kind: 'boolean',
    default: true,
    commands: TRANSFERS,
    env: 'FILEBUS_FILE_MONITORING',
    help: 'wake on file system events; --no-file-monitoring polls every --sleep-interval instead (= --watch poll)',
  },
  watch: {
    kind: 'value',
    default: DEFAULT_WATCH,
    commands: TRANSFERS,
    env: 'FILEBUS_WATCH',
    help: 'auto: file system events, but polling every --sleep-interval on network and FUSE file systems (whose events miss other hosts); ' +
      'events: inotify on the bus directory; chokidar: chokidar on FILE (lossy and back-pressure consumers; costs a directory rescan per event); poll',
    parse: (text, label) => asUsage(() => checkWatch(text, label, quoted(text))),
  },
  lock: {
    kind: 'value',
    library: 'lock',
    default: DEFAULT_LOCK,
    // remove-consumer too: the lock strategy decides how it tells a running consumer.
    commands: ['producer', 'consumer', 'remove-consumer'],
    env: 'FILEBUS_LOCK',
    help: 'flock: flock(2) on FILE.lock, as the reference filebus; mkdir: a lock directory FILE.lock.d, for file systems that do not share ' +
      'flock between hosts. Every process on a bus must use the same',
    parse: (text, label) => asUsage(() => checkLock(text, label, quoted(text))),
  },
  'file-mode': {
    kind: 'value',
    library: 'fileMode',
    aliases: ['mode'],
    unit: 'permission bits',
    defaultHelp: '0666/0777 less the umask',
    commands: TRANSFERS,
    env: 'FILEBUS_FILE_MODE',
    help: 'octal permission bits for every file and directory the bus creates, e.g. 0600 (directories also get x where r is set)',
    parse: (text, label) => {
      if (!/^0?[0-7]{3}$/.test(text.trim())) throw new UsageError(`${label} must be octal permission bits such as 0600 or 644, got ${quoted(text)}`);
      return parseInt(text.trim(), 8);
    },
  },
  'take-over': {
    kind: 'boolean',
    library: 'takeOver',
    default: false,
    commands: TRANSFERS,
    help: 'use FILE even though it shows no sign of being a bus (no FILE.lock, registration or segments): ' +
      'a producer replaces it and a back-pressure consumer deletes it. Without it, such a FILE is refused',
  },
  json: {
    kind: 'boolean',
    default: false,
    // Declared for every command rather than under status, so that
    // `--json consumer` reads as a flag and a command.
    commands: ['status'],
    help: 'status: print one JSON object (the BusStatus type of the library, documented in docs/status.md)',
  },
  progress: {
    kind: 'boolean',
    default: false,
    commands: TRANSFERS,
    env: 'FILEBUS_PROGRESS',
    help: 'producer and consumer: report bytes, rate and chunks on stderr every --progress-interval, ' +
      'in place on a terminal, one line each time otherwise, and a final line at the end',
  },
  'progress-interval': {
    kind: 'value',
    unit: 'seconds',
    default: DEFAULT_PROGRESS_INTERVAL,
    commands: TRANSFERS,
    env: 'FILEBUS_PROGRESS_INTERVAL',
    help: 'seconds between --progress reports; implies --progress',
    parse: (text, label) => checkProgressInterval(seconds(text, label), label, quoted(text)),
  },
  verbose: {
    kind: 'count',
    aliases: ['v'],
    help: 'log what filebus does to stderr (repeat for more)',
  },
  'blocking-read': {
    kind: 'boolean',
    default: false,
    commands: ['producer'],
    scope: 'commands',
    help: 'accepted for compatibility with the reference filebus; input is read the same way either way',
  },
  name: {
    kind: 'value',
    commands: ['consumer'],
    scope: 'commands',
    multicastOnly: true,
    help: 'multicast: a named consumer keeps its position across restarts and holds retention until removed',
    // The library checks the name (Consumer), as it does for remove-consumer's NAME.
    parse: (text) => text,
  },
  from: {
    kind: 'value',
    defaultHelp: 'oldest retained of the current stream',
    commands: ['consumer'],
    scope: 'commands',
    multicastOnly: true,
    help: 'multicast: where to start without a saved position: earliest, latest or a segment number',
    parse: (text, label) => asUsage(() => checkStartPosition(text, label, quoted(text))),
  },
} as const satisfies Record<string, OptionRow>;

export type OptionName = keyof typeof OPTIONS;

/** The rows in the table's order, which is the help's. */
export const OPTION_ROWS: ReadonlyArray<readonly [OptionName, OptionRow]> = Object.entries(OPTIONS) as [OptionName, OptionRow][];

/** Options yargs itself adds (define-cli.ts: .version(), .help() and -h), by name, with their other spellings. */
export const YARGS_OWN_OPTIONS: ReadonlyArray<readonly [string, readonly string[]]> = [['version', []], ['help', ['h']]];

/** Whether `command` takes the option; an unknown or missing command takes only what every command does. */
export function takes(row: OptionRow, command: string | undefined): boolean {
  return row.commands === undefined || (row.commands as readonly string[]).includes(command ?? '');
}

/** The commands yargs declares the option for; undefined: every command. */
export function declaredFor(row: OptionRow): readonly CliCommand[] | undefined {
  return row.scope === 'commands' ? row.commands : undefined;
}

/**
 * The default yargs fills in: booleans' and choices'. A value option's
 * default is left out, so that parse-args can tell a value never given
 * (where the environment may give one) from the default.
 */
export function yargsDefault(row: OptionRow): boolean | string | undefined {
  return row.kind === 'boolean' || row.kind === 'choice' ? row.default : undefined;
}

/** 'producer and consumer': the commands that take an option, for a refusal. */
export function commandsOf(row: OptionRow): string {
  const commands = row.commands ?? [];
  return commands.length < 2 ? commands.join('') : `${commands.slice(0, -1).join(', ')} and ${commands.at(-1)!}`;
}

/** Text as the user typed it, in a refusal. */
function quoted(text: string): string {
  return `'${text}'`;
}

function seconds(text: string, label: string): number {
  const number = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(number)) throw new UsageError(`${label} must be a number of seconds, got ${quoted(text)}`);
  if (number < 0) throw new UsageError(`${label} must not be negative, got ${quoted(text)}`);
  return number;
}
