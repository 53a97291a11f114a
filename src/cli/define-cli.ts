/**
 * The command line as yargs sees it: every command and option with its help
 * text. --help, --version, completion, docs/cli.md and every command line
 * the quick path (quick-parse.ts) does not take are answered from here.
 * Loading yargs is about half of filebus's start-up, so only those load it.
 */
import yargs, { type Argv } from 'yargs';
import { DEFAULT_BLOCK_SIZE, DEFAULT_SLEEP_INTERVAL } from '../options.js';
import { ENVIRONMENT_OPTIONS, environmentVariableOf } from './environment.js';
import { DEFAULT_PROGRESS_INTERVAL } from './parse-args.js';
import type { ParsedArgs } from './quick-parse.js';

const DESCRIPTION = 'A multicast named pipe backed by a regular file.';

/** `describe` text of an option that an environment variable can also set. */
function withEnv(option: string, text: string): string {
  return `${text} [env ${environmentVariableOf(option)}]`;
}

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

/** The whole command line interface, as data: --help, docs and completion come from here. */
export function defineCli(argv: readonly string[], version: string): Argv {
  return yargs([...argv])
    .scriptName('filebus')
    .usage(`$0 [options] <producer|consumer|status|remove-consumer|completion>\n\n${DESCRIPTION}\n\n` +
      '  some-command | filebus --filename /tmp/x producer\n' +
      '  filebus --filename /tmp/x consumer\n' +
      '  filebus --filename /tmp/x status')
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
    .command('status', 'report the bus without changing it: mode, lock, producers, newest chunk and its age, ' +
      'retained chunks and bytes, and each multicast consumer\'s position and lag; exit 3 when there is no bus')
    .completion('completion', 'print a shell completion script for bash (zsh when $SHELL is zsh): filebus completion >> ~/.bashrc')
    .option('filename', { type: 'string', requiresArg: true, describe: withEnv('filename', 'path of the bus file (required)') })
    .option('back-pressure', {
      type: 'boolean',
      default: false,
      describe: withEnv('back-pressure', 'lossless, one consumer per chunk: the producer waits until each chunk is taken'),
    })
    .option('lossless', { type: 'boolean', default: false, describe: 'an alias for --back-pressure' })
    .option('multicast', {
      type: 'boolean',
      default: false,
      describe: withEnv('multicast', 'lossless multicast: every consumer gets every chunk from where it joined, from numbered segments in FILE.segments/'),
    })
    .option('window', {
      type: 'string',
      requiresArg: true,
      describe: withEnv('window', 'multicast: chunks (e.g. 256) or bytes (e.g. 64MiB) retained; the producer waits for a live consumer a full window behind [default: 256]'),
    })
    .option('retain', {
      choices: ['window', 'all'],
      default: 'window',
      describe: withEnv('retain', 'multicast: all keeps every segment (an archive that cat FILE.segments/* reassembles)'),
    })
    .option('block-size', {
      type: 'string',
      requiresArg: true,
      describe: withEnv('block-size', `largest chunk in bytes [default: ${DEFAULT_BLOCK_SIZE}]`),
    })
    .option('sleep-interval', {
      type: 'string',
      requiresArg: true,
      describe: withEnv('sleep-interval', `seconds between checks when no event arrives; the polling period with --no-file-monitoring [default: ${DEFAULT_SLEEP_INTERVAL}]`),
    })
    .option('file-monitoring', {
      type: 'boolean',
      default: true,
      describe: withEnv('file-monitoring', 'wake on file system events; --no-file-monitoring polls every --sleep-interval instead (= --watch poll)'),
    })
    .option('watch', {
      type: 'string',
      requiresArg: true,
      describe: withEnv('watch', 'auto: file system events, but polling every --sleep-interval on network and FUSE file systems (whose events miss other hosts); events: inotify on the bus directory; chokidar: chokidar on FILE (lossy and back-pressure consumers; costs a directory rescan per event); poll [default: auto]'),
    })
    .option('lock', {
      type: 'string',
      requiresArg: true,
      describe: withEnv('lock', 'flock: flock(2) on FILE.lock, as the reference filebus; mkdir: a lock directory FILE.lock.d, for file systems that do not share flock between hosts. Every process on a bus must use the same [default: flock]'),
    })
    .option('file-mode', {
      alias: 'mode',
      type: 'string',
      requiresArg: true,
      describe: withEnv('file-mode', 'octal permission bits for every file and directory the bus creates, e.g. 0600 (directories also get x where r is set) [default: 0666/0777 less the umask]'),
    })
    // Global rather than under status, so that `--json consumer` reads as a flag and a command.
    .option('json', {
      type: 'boolean',
      default: false,
      describe: 'status: print one JSON object (the BusStatus type of the library, documented in docs/status.md)',
    })
    .option('progress', {
      type: 'boolean',
      default: false,
      describe: withEnv('progress', 'producer and consumer: report bytes, rate and chunks on stderr every --progress-interval, ' +
        'in place on a terminal, one line each time otherwise, and a final line at the end'),
    })
    .option('progress-interval', {
      type: 'string',
      requiresArg: true,
      describe: withEnv('progress-interval', `seconds between --progress reports; implies --progress [default: ${DEFAULT_PROGRESS_INTERVAL}]`),
    })
    .option('verbose', { alias: 'v', type: 'count', describe: 'log what filebus does to stderr (repeat for more)' })
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
 * in case the command fails later: about 30 ms of a 150 ms start-up, which
 * a producer's first chunk waits for. filebus reports its own failures in
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

/** What yargs makes of `argv`; a problem it finds is thrown as `fail` makes it. */
export function parseWithYargs(argv: readonly string[], version: string, fail: (message: string) => Error): ParsedArgs {
  const cli = defineCli(argv, version);
  skipHelpCache(cli);
  return cli
    .fail((message, error) => {
      throw fail(message || error?.message || 'invalid command line');
    })
    .parseSync() as ParsedArgs;
}
