import { pipeline } from 'node:stream/promises';
import { FilebusError } from '../errors.js';
import { Consumer } from '../streams/consumer.js';
import { Producer } from '../streams/producer.js';
import { checkStartPosition, type BusOptions } from '../options.js';
import { removeConsumer } from '../streams/remove-consumer.js';
import type { CliArgs } from './parse-args.js';
import { writeAll } from './write-output.js';

function busOptions(args: CliArgs, signal: AbortSignal): BusOptions {
  return {
    filename: args.filename,
    mode: args.mode,
    blockSize: args.blockSize,
    sleepInterval: args.sleepInterval,
    fileMonitoring: args.fileMonitoring,
    signal,
    ...(args.window !== undefined && { window: args.window }),
    retain: args.retain,
  };
}

/** stdin onto the bus; at end of input, the mode's end marker. */
export async function runProducer(args: CliArgs, signal: AbortSignal): Promise<void> {
  const producer = new Producer({ ...busOptions(args, signal), blockingRead: args.blockingRead });
  await pipeline(process.stdin, producer);
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
  for await (const chunk of consumer) await writeAll(1, chunk);
}

/** Forgets a named multicast consumer, so its position no longer holds retention. */
export async function runRemoveConsumer(args: CliArgs): Promise<void> {
  const removed = await removeConsumer({ filename: args.filename, mode: 'multicast' }, args.name ?? '');
  if (!removed) throw new FilebusError('ERR_FILEBUS_CONSUMER', `no consumer named ${args.name} on ${args.filename}`);
}
