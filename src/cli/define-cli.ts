/**
 * The command line as yargs sees it: every command, and every option of the
 * option table (option-table.ts) with its help text. --help, --version,
 * completion, docs/cli.md and every command line the quick path
 * (quick-parse.ts) does not take are answered from here. Loading yargs is
 * about half of filebus's start-up, so only those load it.
 */
import yargs, { type Argv, type Options } from 'yargs';
import { ENVIRONMENT_OPTIONS } from './environment.js';
import { OPTION_ROWS, declaredFor, yargsDefault, type CliCommand, type OptionRow } from './option-table.js';
import type { ParsedArgs } from './quick-parse.js';
import { UsageError } from './usage-error.js';

const DESCRIPTION = 'A multicast named pipe backed by a regular file.';

const EPILOGUE = [
  `Environment: ${ENVIRONMENT_OPTIONS.map((e) => e.variable).join(', ')} set the flag of the same name ` +
    '(booleans: 1, true, yes, on or 0, false, no, off; an empty variable counts as unset). A flag on the command line wins; ' +
    'a variable for an option that does not apply to the mode is ignored, and status and remove-consumer read only FILEBUS_FILENAME.',
  'Exit status: 0 on success; 1 when the bus cannot be read or written, or before touching it when a producer\'s standard input ' +
    'or a consumer\'s standard output is closed (Node reopens a closed one as /dev/null read-write, which is refused too: use ' +
    '< /dev/null or > /dev/null), open the wrong way, or a directory; 2 for a bad command line, path or FILEBUS_* variable; ' +
    '3 when status finds no bus at FILE; 141 when a consumer\'s output is closed mid-stream (like a filter killed by SIGPIPE). ' +
    'On SIGINT or SIGTERM filebus releases the lock, then dies of the signal.',
].join('\n\n');

/**
 * A row of the option table as yargs takes it. A value option's default is
 * only shown in its text: parse-args applies it (option-table.ts, yargsDefault).
 */
function yargsOption(row: OptionRow): Options {
  const shownDefault = row.kind === 'value' ? row.defaultHelp ?? (row.default === undefined ? undefined : String(row.default)) : undefined;
  const describe = [row.help, shownDefault !== undefined && `[default: ${shownDefault}]`, row.env !== undefined && `[env ${row.env}]`]
    .filter((part) => part !== false).join(' ');
  const alias = row.aliases && { alias: row.aliases.length === 1 ? row.aliases[0]! : [...row.aliases] };
  switch (row.kind) {
    case 'value': return { ...alias, type: 'string', requiresArg: true, describe };
    case 'boolean': return { ...alias, type: 'boolean', default: yargsDefault(row), describe };
    case 'choice': return { ...alias, choices: [...row.choices], default: yargsDefault(row), describe };
    case 'count': return { ...alias, type: 'count', describe };
  }
}

/** Declares the options of the table that yargs declares for `command` (undefined: for every command). */
function withOptions<T>(y: Argv<T>, command: CliCommand | undefined): Argv<T> {
  let declared = y;
  for (const [name, row] of OPTION_ROWS) {
    const commands = declaredFor(row);
    if (command === undefined ? commands === undefined : commands?.includes(command) === true) declared = declared.option(name, yargsOption(row));
  }
  return declared;
}

/** The whole command line interface, as data: --help, docs and completion come from here. */
export function defineCli(argv: readonly string[], version: string): Argv {
  const cli = yargs([...argv])
    .scriptName('filebus')
    .usage(`$0 [options] <producer|consumer|status|remove-consumer|completion>\n\n${DESCRIPTION}\n\n` +
      '  some-command | filebus --filename /tmp/x producer\n' +
      '  filebus --filename /tmp/x consumer\n' +
      '  filebus --filename /tmp/x status')
    .command('producer', 'read standard input and publish it on the bus', (y) => withOptions(y, 'producer'))
    .command('consumer', 'write the chunks on the bus to standard output', (y) => withOptions(y, 'consumer'))
    .command('remove-consumer <name>', 'multicast: forget a named consumer and release what it retains')
    .command('status', 'report the bus without changing it: mode, lock, producers, newest chunk and its age, ' +
      'retained chunks and bytes, and each multicast consumer\'s position and lag; exit 3 when there is no bus')
    .completion('completion', 'print a shell completion script for bash (zsh when $SHELL is zsh): filebus completion >> ~/.bashrc');
  return withOptions(cli, undefined)
    .version(version)
    .help()
    .alias('help', 'h')
    // A fixed width: asking process.stdout for its columns would turn fd 1
    // non-blocking, and a consumer writing to a slow pipe would then spin on EAGAIN.
    .wrap(100)
    .epilogue(EPILOGUE);
}

/**
 * After running a command yargs renders the whole help text and keeps it,
 * in case the command fails later: a fifth of start-up, which a producer's
 * first chunk waits for (docs/performance.md, "Start-up"). filebus reports its own failures in
 * one line and renders help only for --help, so the cache is never read.
 * This reaches into yargs' internals: if they change shape, nothing is
 * skipped and start-up is only slower.
 */
function skipHelpCache(cli: Argv): void {
  const internals = (cli as unknown as { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } })
    .getInternalMethods?.();
  const usage = internals?.getUsageInstance?.();
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => {};
}

/** What yargs makes of `argv`; a problem it finds is thrown as a UsageError. */
export function parseWithYargs(argv: readonly string[], version: string): ParsedArgs {
  const cli = defineCli(argv, version);
  skipHelpCache(cli);
  return cli
    .fail((message, error) => {
      throw new UsageError(message || error?.message || 'invalid command line');
    })
    .parseSync() as ParsedArgs;
}
