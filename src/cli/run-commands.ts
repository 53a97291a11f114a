import { FilebusError } from '../errors.js';
import { Consumer } from '../streams/consumer.js';
import { Producer, type TransferStats } from '../streams/producer.js';
import type { BusOptions } from '../options.js';
import { removeConsumer } from '../streams/remove-consumer.js';
import { busStatus } from '../status/bus-status.js';
import type { BusInfo } from '../engine/open-bus.js';
import type { CliArgs } from './parse-args.js';
import { ProgressReporter, type ProgressSource } from './progress.js';
import { formatStatus } from './status-report.js';
import { oneLine } from './format.js';
import { writeAll } from './write-output.js';
import { feedStandardInput } from './read-input.js';
import { checkStandardInput, checkStandardOutput } from './standard-streams.js';

function busOptions(args: CliArgs, signal: AbortSignal): BusOptions {
  return {
    filename: args.filename,
    mode: args.mode,
    watch: args.watch,
    signal,
    retain: args.retain,
    ...args.library,
  };
}

/** stdin onto the bus; at end of input, the mode's end marker. */
export async function runProducer(args: CliArgs, signal: AbortSignal): Promise<void> {
  checkStandardInput();
  const producer = new Producer({ ...busOptions(args, signal), blockingRead: args.blockingRead });
  const log = logger(args, 'producer');
  log(1, `${args.mode} producer on ${args.filename}`);
  producer.on('bus', (info: BusInfo) => logBus(log, info, args));
  producer.on('chunk', (stats: TransferStats) => log(2, `published chunk ${stats.chunks} (${stats.bytes} bytes so far)`));
  await withProgress(args, 'producer', producer, () => feedStandardInput(producer, args.blockSize));
  log(1, `done: ${producer.stats.chunks} chunks, ${producer.stats.bytes} bytes`);
}

/** Runs `transfer` with --progress reports on stderr when asked for, ending with a final line however it ends. */
async function withProgress(args: CliArgs, role: string, source: ProgressSource, transfer: () => Promise<void>): Promise<void> {
  if (!args.progress) return transfer();
  const reporter = new ProgressReporter(source, {
    role,
    intervalMs: args.progressIntervalMs,
    terminal: process.stderr.isTTY === true,
    write: (text) => process.stderr.write(text),
  });
  let outcome: 'done' | 'stopped' = 'stopped';
  try {
    await transfer();
    outcome = 'done';
  } finally {
    reporter.stop(outcome);
  }
}

/** `-v` lines on stderr: level 1 for start and end, 2 for every chunk. */
function logger(args: CliArgs, role: string): (level: number, message: string) => void {
  return (level, message) => {
    if (args.verbosity >= level) process.stderr.write(`filebus ${role}: ${oneLine(message)}\n`);
  };
}

/**
 * Says how the bus is watched and locked, and on a network file system
 * what that costs and what it needs (docs/distributed.md).
 */
function logBus(log: (level: number, message: string) => void, info: BusInfo, args: CliArgs): void {
  const fsName = `${info.fileSystem.name}${info.fileSystem.network ? ', a network file system' : ''}`;
  const watching = info.watching === 'events' ? 'file system events' : `polling every ${args.sleepInterval} s`;
  log(1, `bus on ${fsName}; watching: ${watching}; lock: ${info.lock}`);
  if (!info.fileSystem.network) return;
  if (info.watching === 'events') {
    log(1, 'warning: --watch events on a network file system: changes made by other hosts wake nothing, every wait runs its full --sleep-interval');
  }
  log(1, 'note: other hosts\' changes are seen by polling, and no sooner than this host\'s file system client shows them; ' +
    'mount options (NFS: lookupcache=positive,actimeo=0) and --lock choice: docs/distributed.md');
}

/**
 * The bus onto stdout. Each chunk is written whole to fd 1 before the next
 * is asked for, which is what makes a back-pressure chunk count as
 * delivered: a consumer killed mid-write leaves it on the bus.
 */
export async function runConsumer(args: CliArgs, signal: AbortSignal): Promise<void> {
  checkStandardOutput();
  const consumer = new Consumer({
    ...busOptions(args, signal),
    ...(args.name !== undefined && { name: args.name }),
    ...(args.from !== undefined && { from: args.from }),
    // Each chunk is written out whole before the next is read, and stdout
    // is a byte stream: where chunks end does not show.
    reuseBuffers: true,
    coalesce: true,
  });
  const log = logger(args, 'consumer');
  log(1, `${args.mode} consumer on ${args.filename}`);
  consumer.on('bus', (info: BusInfo) => logBus(log, info, args));
  await withProgress(args, 'consumer', consumer, async () => {
    for await (const chunk of consumer) {
      await writeAll(1, chunk);
      log(2, `emitted chunk ${consumer.stats.chunks} (${chunk.length} bytes)`);
    }
  });
  log(1, `done: ${consumer.stats.chunks} chunks, ${consumer.stats.bytes} bytes`);
}

/** The bus's state on stdout, as text or as one JSON object; never changes the bus. */
export async function runStatus(args: CliArgs): Promise<void> {
  const status = await busStatus(args.filename);
  const text = args.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status);
  await writeAll(1, Buffer.from(text));
}

/** Forgets a named multicast consumer, so its position no longer holds retention. */
export async function runRemoveConsumer(args: CliArgs): Promise<void> {
  const removed = await removeConsumer({ filename: args.filename, mode: 'multicast', lock: args.lock }, args.name ?? '');
  if (!removed) throw new FilebusError('ERR_FILEBUS_CONSUMER', `no consumer named ${args.name} on ${args.filename}`);
}
