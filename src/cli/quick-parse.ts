/**
 * The quick path: the plain command lines a producer or consumer is started
 * with (`--filename /tmp/x --back-pressure -v producer`) read without
 * loading yargs, which is half of filebus's start-up, and a producer's
 * first chunk waits for all of it (docs/performance.md, "Start-up").
 *
 * It takes only what yargs reads one way: each known long option at most
 * once, a value that does not start with a dash, one command word, -v in
 * a single group. It gives up (undefined) on anything else, and yargs
 * decides (define-cli.ts). Both take their options from one table
 * (option-table.ts). What it returns has the shape yargs returns, and
 * test/cli/quick-parse.test.ts checks that both give the same result, or
 * the same error, for thousands of command lines.
 */
import { OPTION_ROWS, declaredFor, yargsDefault, type CliCommand } from './option-table.js';

/** What yargs' parseSync returns: option values by name, positionals in `_`. */
export type ParsedArgs = Record<string, unknown> & { _: (string | number)[] };

type Command = 'producer' | 'consumer' | 'status';

const COMMANDS: ReadonlySet<string> = new Set<Command>(['producer', 'consumer', 'status']);

/** Options of one kind, and the commands yargs declares them for (undefined: every command). */
function declared(kind: 'value' | 'boolean'): ReadonlyMap<string, readonly CliCommand[] | undefined> {
  return new Map(OPTION_ROWS.filter(([, row]) => row.kind === kind).map(([name, row]) => [name, declaredFor(row)]));
}

/** Options with a value. */
const VALUE_OPTIONS = declared('value');

/** Boolean flags, only in their plain `--flag` form. */
const FLAGS = declared('boolean');

/** The defaults yargs fills in (define-cli.ts), which the rest of parseArgs reads. */
function defaults(command: Command): ParsedArgs {
  const parsed: ParsedArgs = { _: [command] };
  for (const [name, row] of OPTION_ROWS) {
    const value = yargsDefault(row);
    if (value !== undefined && (declaredFor(row)?.includes(command) ?? true)) parsed[name] = value;
  }
  return parsed;
}

export function quickParse(argv: readonly string[]): ParsedArgs | undefined {
  let command: Command | undefined;
  const values = new Map<string, string>();
  const flags = new Set<string>();
  let verbose = 0;
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (COMMANDS.has(token)) {
      if (command !== undefined) return undefined;
      command = token as Command;
    } else if (/^-v+$/.test(token) || token === '--verbose') {
      if (verbose > 0) return undefined;
      verbose = token === '--verbose' ? 1 : token.length - 1;
    } else if (token.startsWith('--')) {
      const equals = token.indexOf('=');
      const name = token.slice(2, equals < 0 ? undefined : equals);
      // An option only one command declares means it only after that command word.
      const only = VALUE_OPTIONS.get(name) ?? FLAGS.get(name);
      if (only !== undefined && (command === undefined || !only.includes(command))) return undefined;
      if (FLAGS.has(name) && equals < 0) {
        if (flags.has(name)) return undefined;
        flags.add(name);
        continue;
      }
      if (!VALUE_OPTIONS.has(name) || values.has(name)) return undefined;
      const value = equals < 0 ? argv[++i] : token.slice(equals + 1);
      if (value === undefined || !plainValue(value)) return undefined;
      values.set(name, value);
    } else {
      return undefined;
    }
  }
  if (command === undefined) return undefined;
  const parsed = defaults(command);
  for (const [name, value] of values) parsed[name] = value;
  for (const name of flags) parsed[name] = true;
  if (verbose > 0) parsed['verbose'] = verbose;
  return parsed;
}

/** A value yargs passes through as typed: it may read a leading dash as the next option, and an empty value is left to it. */
function plainValue(value: string): boolean {
  return value !== '' && !value.startsWith('-');
}
