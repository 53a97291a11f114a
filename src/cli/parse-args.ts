/**
 * The command line and the FILEBUS_* variables, checked, as the arguments
 * of one command. Each value is read and checked by its row of the option
 * table (option-table.ts); what is here is how the options combine: which
 * source wins, the mode, what applies only to some commands or modes.
 */
import type { BusMode, BusOptions, LockStrategy, StartPosition, WatchMode } from '../options.js';
import { environmentBoolean, readEnvironment, type FromEnvironment } from './environment.js';
import {
  OPTIONS, OPTION_ROWS, YARGS_OWN_OPTIONS, commandsOf, takes, type CliCommand, type LibraryOption, type OptionName, type ParseText,
} from './option-table.js';
import { quickParse, type ParsedArgs } from './quick-parse.js';
import { UsageError } from './usage-error.js';

export interface CliArgs {
  readonly command: CliCommand;
  readonly filename: string;
  readonly mode: BusMode;
  readonly blockSize: number;
  /** Seconds. */
  readonly sleepInterval: number;
  readonly watch: WatchMode;
  readonly lock: LockStrategy;
  readonly verbosity: number;
  readonly blockingRead: boolean;
  /** As typed (checked): the library reads chunks or a size from it. */
  readonly window: string | undefined;
  readonly retain: 'window' | 'all';
  /** consumer --name, or the NAME of remove-consumer. */
  readonly name: string | undefined;
  readonly from: StartPosition | undefined;
  readonly fileMode: number | undefined;
  /** The library options the table's rows stand for one to one (their `library`), as given. */
  readonly library: Readonly<Pick<BusOptions, LibraryOption>>;
  /** status --json */
  readonly json: boolean;
  /** producer and consumer --progress, and its period. */
  readonly progress: boolean;
  readonly progressIntervalMs: number;
}

/** The argument yargs' completion script passes; everything after it is a command line being typed. */
const COMPLETION_FLAG = '--get-yargs-completions';

/** A flag's value and what to call its source in an error: `--block-size` or `FILEBUS_BLOCK_SIZE`. */
interface Sourced {
  readonly text: string;
  readonly label: string;
}

type Table = typeof OPTIONS;
/** The options with a value, and what their text becomes. */
type ValueName = { [N in OptionName]: Table[N] extends { kind: 'value' } ? N : never }[OptionName];
type ValueOf<N extends ValueName> = ReturnType<Table[N]['parse']>;
type BooleanName = { [N in OptionName]: Table[N] extends { kind: 'boolean' } ? N : never }[OptionName];

export interface ParseOptions {
  /** The environment FILEBUS_* variables are read from. */
  readonly env?: NodeJS.ProcessEnv;
  /** Let yargs read every command line, not only those the quick path does not take (a test seam). */
  readonly yargsOnly?: boolean;
}

export async function parseArgs(argv: readonly string[], version: string, options: ParseOptions = {}): Promise<CliArgs> {
  const given = scanFlags(argv);
  const parsed = (options.yargsOnly ? undefined : quickParse(argv)) ?? (await import('./define-cli.js')).parseWithYargs(argv, version);
  const [command, ...extra] = parsed._.map(String);
  const environment = readEnvironment(options.env ?? process.env, command);
  /** A value option from the command line, else from its environment variable. */
  const sourced = (name: ValueName): Sourced | undefined => {
    const text = single(parsed, name);
    if (text !== undefined) return { text, label: `--${name}` };
    const fromEnv = environment.get(name);
    return fromEnv && { text: fromEnv.text, label: fromEnv.variable };
  };
  const parsedValues = new Map<ValueName, unknown>();
  const value = <N extends ValueName>(name: N): ValueOf<N> | undefined => {
    if (parsedValues.has(name)) return parsedValues.get(name) as ValueOf<N> | undefined;
    const source = sourced(name);
    // One cast: TypeScript cannot tie a row's parse to its name through the table's index.
    const result = source && (OPTIONS[name].parse as ParseText<ValueOf<N>>)(source.text, source.label);
    parsedValues.set(name, result);
    return result;
  };
  /** A boolean flag from the command line when given there (also as --no-X), else from the environment. */
  const flag = (name: BooleanName): boolean => {
    if (given.has(name)) return parsed[name] === true;
    const fromEnv = environment.get(name);
    return fromEnv ? environmentBoolean(fromEnv) : OPTIONS[name].default;
  };
  // Values first: `--block-size producer` is a missing number, not a missing command.
  const blockSize = value('block-size') ?? OPTIONS['block-size'].default;
  const sleepInterval = value('sleep-interval') ?? OPTIONS['sleep-interval'].default;
  const fileMode = value('file-mode');
  const progressInterval = value('progress-interval') ?? OPTIONS['progress-interval'].default;
  const filename = value('filename');
  if (command === undefined) throw new UsageError('a command is required: producer, consumer, status, remove-consumer or completion');
  if (command !== 'producer' && command !== 'consumer' && command !== 'remove-consumer' && command !== 'status') {
    throw new UsageError(`unknown command '${command}' (expected producer, consumer, status, remove-consumer or completion)`);
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}' after ${command}`);
  if (filename === undefined || filename === '') throw new UsageError('--filename is required');
  const { backPressure, multicast } = chooseMode(given, parsed, environment);
  const isMulticast = multicast || command === 'remove-consumer';
  if (!isMulticast) refuseMulticastOnly(parsed);
  const window = isMulticast ? value('window') : undefined;
  const from = isMulticast ? value('from') : undefined;
  const name = single(parsed, 'name');
  // --retain has a yargs default, so whether it was typed comes from the scan.
  const retainFromEnv = !given.has('retain') && isMulticast ? environment.get('retain') : undefined;
  const retain = retainFromEnv ? OPTIONS.retain.parse(retainFromEnv.text, retainFromEnv.variable) : parsed['retain'];
  if (given.has('json') && !takes(OPTIONS.json, command) && parsed['json'] === true) {
    throw new UsageError(`--json applies only to ${commandsOf(OPTIONS.json)}`);
  }
  const transfers = takes(OPTIONS.progress, command);
  if (!transfers && (given.has('progress') || given.has('progress-interval'))) {
    throw new UsageError(`--progress applies only to ${commandsOf(OPTIONS.progress)}`);
  }
  // Asking for a report period on the command line asks for the reports.
  const progress = transfers && (given.has('progress-interval') && !given.has('progress') ? true : flag('progress'));
  const library: Partial<Record<LibraryOption, unknown>> = {};
  for (const [name, row] of OPTION_ROWS) {
    if (row.library === undefined || !takes(row, command) || (row.multicastOnly && !isMulticast)) continue;
    const read = row.kind === 'boolean' ? flag(name as BooleanName) : row.kind === 'value' ? value(name as ValueName) : undefined;
    if (read !== undefined) library[row.library] = read;
  }
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
    watch: resolveWatch(sourced('watch'), flag('file-monitoring')),
    lock: value('lock') ?? OPTIONS.lock.default,
    verbosity: Number(parsed['verbose'] ?? 0),
    blockingRead: Boolean(parsed['blocking-read']),
    // Each row's parse returns what its library option takes (option-table.ts).
    library: library as Pick<BusOptions, LibraryOption>,
    json: parsed['json'] === true,
    progress,
    progressIntervalMs: progressInterval * 1000,
  };
}

/**
 * The mode flags on the command line decide alone when any is there; the
 * environment's only count when none is.
 */
function chooseMode(given: ReadonlySet<string>, parsed: ParsedArgs, environment: ReadonlyMap<OptionName, FromEnvironment>): { backPressure: boolean; multicast: boolean } {
  let backPressure: boolean;
  let multicast: boolean;
  if (given.has('back-pressure') || given.has('multicast')) {
    backPressure = parsed['back-pressure'] === true || parsed['lossless'] === true;
    multicast = parsed['multicast'] === true;
    if (backPressure && multicast) throw new UsageError('--multicast and --back-pressure are different modes; choose one');
  } else {
    const bp = environment.get('back-pressure');
    const mc = environment.get('multicast');
    backPressure = bp !== undefined && environmentBoolean(bp);
    multicast = mc !== undefined && environmentBoolean(mc);
    if (backPressure && multicast) throw new UsageError(`${mc!.variable} and ${bp!.variable} select different modes; set one`);
  }
  return { backPressure, multicast };
}

/** Options of multicast buses on the command line of another mode (their variables are ignored there). */
function refuseMulticastOnly(parsed: ParsedArgs): void {
  for (const [name, row] of OPTION_ROWS) {
    if (!row.multicastOnly) continue;
    const typed = row.kind === 'value' ? single(parsed, name) : parsed[name];
    // A choice has a yargs default, which is no choice of the user's.
    if (typed !== undefined && !(row.kind === 'choice' && typed === row.default)) throw new UsageError(`--${name} applies only with --multicast`);
  }
}

/** Every spelling of every option, with the name the rest of parseArgs knows it under. */
const CANONICAL: ReadonlyMap<string, string> = (() => {
  const canonical = new Map<string, string>();
  for (const [name, row] of OPTION_ROWS) {
    const known = row.kind === 'boolean' && row.sameAs !== undefined ? row.sameAs : name;
    for (const spelling of [name, ...(row.aliases ?? [])]) {
      canonical.set(spelling, known);
      // --no-X is how yargs negates a boolean.
      if (row.kind === 'boolean') canonical.set(`no-${spelling}`, known);
    }
  }
  for (const [name, aliases] of YARGS_OWN_OPTIONS) for (const spelling of [name, ...aliases]) canonical.set(spelling, name);
  return canonical;
})();

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
  const note = (name: string, shown: string): void => {
    const canonical = CANONICAL.get(name);
    if (canonical === undefined) throw new UsageError(`unknown option '${shown}'`);
    given.add(canonical);
  };
  for (const token of argv) {
    if (token === '--') break;
    if (!token.startsWith('-') || token === '-') continue;
    if (token.startsWith('--')) {
      const name = token.slice(2).split('=')[0]!;
      note(name, `--${name}`);
    } else if (/^-[0-9.]/.test(token)) {
      continue; // a negative number, e.g. --sleep-interval -1: judged as a value later
    } else {
      for (const letter of token.slice(1)) note(letter, `-${letter}`);
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

/** --no-file-monitoring predates --watch and means --watch poll; any other --watch contradicts it. */
function resolveWatch(value: Sourced | undefined, fileMonitoring: boolean): WatchMode {
  const watch = value && OPTIONS.watch.parse(value.text, value.label);
  if (!fileMonitoring) {
    if (value !== undefined && watch !== 'poll') throw new UsageError(`--no-file-monitoring means --watch poll; it contradicts ${value.label} ${value.text}`);
    return 'poll';
  }
  return watch ?? OPTIONS.watch.default;
}
