import fs from 'node:fs';
import { FilebusError } from '../errors.js';
import { oneLine } from './format.js';
import { parseArgs, type CliArgs } from './parse-args.js';
import { tuneTiering } from './tiering.js';
import { runConsumer, runProducer, runRemoveConsumer, runStatus } from './run-commands.js';
import { UsageError } from './usage-error.js';
import { OutputClosedError } from './write-output.js';

/** Exit codes, also listed in --help. */
const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;
/** status: there is no bus at FILE. */
const EXIT_NO_BUS = 3;
/** What a shell reports for a filter killed by SIGPIPE; Node ignores SIGPIPE, so we say it ourselves. */
const EXIT_OUTPUT_CLOSED = 128 + 13;

/** Problems with what the user asked for, as opposed to failures while running. */
const USAGE_CODES = new Set(['ERR_FILEBUS_INVALID_OPTION', 'ERR_FILEBUS_BAD_PATH', 'ERR_FILEBUS_DIRECTORY', 'ERR_FILEBUS_LOCK_STRATEGY', 'ERR_FILEBUS_UNTRUSTED', 'ERR_FILEBUS_NOT_A_BUS', 'ERR_FILEBUS_MODE']);

function readVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function fail(message: string, code: number): never {
  process.stderr.write(`filebus: ${oneLine(message.trimEnd())}\n`);
  process.exit(code);
}

function exitCodeFor(error: unknown): { code: number; message?: string } {
  if (error instanceof OutputClosedError) return { code: EXIT_OUTPUT_CLOSED };
  if (error instanceof UsageError) return { code: EXIT_USAGE, message: error.message };
  if (error instanceof FilebusError) {
    if (error.code === 'ERR_FILEBUS_NOT_FOUND') return { code: EXIT_NO_BUS, message: error.message };
    return { code: USAGE_CODES.has(error.code) ? EXIT_USAGE : EXIT_FAILURE, message: error.message };
  }
  const text = error instanceof Error ? error.message : String(error);
  return { code: EXIT_FAILURE, message: text };
}

/**
 * SIGINT/SIGTERM abort the command; the library then releases the lock and
 * removes its temporary file, and we die of the same signal so the parent
 * sees why. A second signal, or cleanup taking too long, ends us at once.
 */
function handleSignals(controller: AbortController, finished: Promise<unknown>): void {
  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received) process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    received = signal;
    controller.abort();
    const reraise = (): void => {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    };
    setTimeout(reraise, 2000).unref();
    finished.finally(reraise);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

export async function main(argv: readonly string[]): Promise<void> {
  let args: CliArgs;
  try {
    args = await parseArgs(argv, readVersion());
  } catch (error) {
    const { code, message } = exitCodeFor(error);
    return fail(message ?? 'invalid command line', code);
  }
  if (args.command === 'producer' || args.command === 'consumer') tuneTiering(args.blockSize);
  const controller = new AbortController();
  const run = args.command === 'producer' ? runProducer(args, controller.signal)
    : args.command === 'consumer' ? runConsumer(args, controller.signal)
      : args.command === 'status' ? runStatus(args)
        : runRemoveConsumer(args);
  handleSignals(controller, run.catch(() => {}));
  try {
    await run;
  } catch (error) {
    if (controller.signal.aborted) return; // the signal handler finishes the exit
    const { code, message } = exitCodeFor(error);
    if (message === undefined) process.exit(code);
    fail(message, code);
  }
  process.exit(EXIT_OK);
}
