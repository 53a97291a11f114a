import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { FilebusError } from '../errors.js';
import { Consumer } from '../streams/consumer.js';
import { Producer, type TransferStats } from '../streams/producer.js';
import { checkStartPosition, type BusOptions } from '../options.js';
import { removeConsumer } from '../streams/remove-consumer.js';
import type { BusInfo } from '../engine/open-bus.js';
import type { CliArgs } from './parse-args.js';
import { writeAll } from './write-output.js';

function busOptions(args: CliArgs, signal: AbortSignal): BusOptions {
  return {
    filename: args.filename,
    mode: args.mode,
    blockSize: args.blockSize,
    sleepInterval: args.sleepInterval,
    watch: args.watch,
    lock: args.lock,
    signal,
    ...(args.window !== undefined && { window: args.window }),
    retain: args.retain,
    ...(args.fileMode !== undefined && { fileMode: args.fileMode }),
  };
}

/** stdin onto the bus; at end of input, the mode's end marker. */
export async function runProducer(args: CliArgs, signal: AbortSignal): Promise<void> {
  const producer = new Producer({ ...busOptions(args, signal), blockingRead: args.blockingRead });
  const log = logger(args, 'producer');
  log(1, `${args.mode} producer on ${args.filename}`);
  producer.on('bus', (info: BusInfo) => logBus(log, info, args));
  producer.on('chunk', (stats: TransferStats) => log(2, `published chunk ${stats.chunks} (${stats.bytes} bytes so far)`));
  await pipeline(standardInput(args.blockSize), producer);
  log(1, `done: ${producer.stats.chunks} chunks, ${producer.stats.bytes} bytes`);
}

/**
 * A file on stdin is read a whole block at a time: Node's stdin would read
 * it in 64 KiB pieces, each arriving on its own turn of the event loop,
 * which the producer would take for input going idle and cut short chunks.
 * Pipes and terminals stay with process.stdin, whose reads end exactly
 * when no more input is waiting.
 */
function standardInput(blockSize: number): NodeJS.ReadableStream {
  let isFile = false;
  try {
    isFile = fs.fstatSync(0).isFile();
  } catch { /* no stdin: let process.stdin report it */ }
  return isFile ? fs.createReadStream('', { fd: 0, highWaterMark: blockSize, autoClose: false }) : process.stdin;
}

/** `-v` lines on stderr: level 1 for start and end, 2 for every chunk. */
function logger(args: CliArgs, role: string): (level: number, message: string) => void {
  return (level, message) => {
    if (args.verbosity >= level) process.stderr.write(`filebus ${role}: ${message}\n`);
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
  const consumer = new Consumer({
    ...busOptions(args, signal),
    ...(args.name !== undefined && { name: args.name }),
    ...(args.from !== undefined && { from: checkStartPosition(args.from) }),
  });
  const log = logger(args, 'consumer');
  log(1, `${args.mode} consumer on ${args.filename}`);
  consumer.on('bus', (info: BusInfo) => logBus(log, info, args));
  for await (const chunk of consumer) {
    await writeAll(1, chunk);
    log(2, `emitted chunk ${consumer.stats.chunks} (${chunk.length} bytes)`);
  }
  log(1, `done: ${consumer.stats.chunks} chunks, ${consumer.stats.bytes} bytes`);
}

/** Forgets a named multicast consumer, so its position no longer holds retention. */
export async function runRemoveConsumer(args: CliArgs): Promise<void> {
  const removed = await removeConsumer({ filename: args.filename, mode: 'multicast', lock: args.lock }, args.name ?? '');
  if (!removed) throw new FilebusError('ERR_FILEBUS_CONSUMER', `no consumer named ${args.name} on ${args.filename}`);
}
