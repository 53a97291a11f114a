/**
 * Back-pressure runs as the CLI tests make them, with the checks each of
 * them makes: the processes exit 0 and say nothing on stderr, and the
 * consumer prints exactly the input.
 */
import path from 'node:path';
import { expect } from 'vitest';
import { listTree } from './bus-layout.js';
import { sha256 } from './cli.js';
import { startFilebus, waitForWatch, type Proc } from './procs.js';
import { within } from './wait.js';

/**
 * A consumer, then a producer writing `input`, on back-pressure bus `bus`
 * with `extra` flags; returns what the consumer printed. With
 * `waitForConsumer`, the producer starts once the consumer watches the bus.
 */
export async function carry(bus: string, input: Buffer, extra: readonly string[] = [], options: { waitForConsumer?: boolean } = {}): Promise<Buffer> {
  const common = ['--filename', bus, '--back-pressure', ...extra];
  const consumer = startFilebus([...common, 'consumer'], { stdin: 'ignore' });
  if (options.waitForConsumer) await waitForWatch(consumer.pid);
  const producer = startFilebus([...common, 'producer'], { stdin: 'pipe' });
  producer.child.stdin!.end(input);
  const [p, c] = await within(Promise.all([producer.done, consumer.done]), 30_000, 'producer and consumer');
  expect(producer.stderr()).toBe('');
  expect(consumer.stderr()).toBe('');
  expect(p).toEqual({ code: 0, signal: null });
  expect(c).toEqual({ code: 0, signal: null });
  return consumer.stdout();
}

/**
 * After a consumer failed mid-stream, a new consumer on `common` (the
 * flags of the run) drains the bus `producer` is still publishing on: both
 * exit 0, the consumer says nothing and prints exactly `input`, and only
 * FILE.lock is left in the bus's directory.
 */
export async function drainWithNextConsumer(common: readonly string[], producer: Proc, input: Buffer): Promise<void> {
  const bus = common[common.indexOf('--filename') + 1]!;
  const next = startFilebus([...common, 'consumer'], { stdin: 'ignore' });
  const [p, c] = await within(Promise.all([producer.done, next.done]), 30_000, 'the producer and the next consumer');
  expect(p).toEqual({ code: 0, signal: null });
  expect(c).toEqual({ code: 0, signal: null });
  expect(next.stderr()).toBe('');
  expect(next.stdout().length).toBe(input.length);
  expect(sha256(next.stdout())).toBe(sha256(input));
  expect(listTree(path.dirname(bus))).toEqual(['bus.lock']);
}
