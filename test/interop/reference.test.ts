/**
 * Interoperability with the reference filebus (the Python package 0.3.5).
 *
 * Needs FILEBUS_REFERENCE: the path of an executable that behaves like the
 * reference `filebus`. test/interop/setup-reference.sh extracts one from a
 * git mirror into a directory outside this repository and prints its path:
 *
 *   FILEBUS_REFERENCE=$(test/interop/setup-reference.sh) npx vitest run test/interop
 *
 * Without it every test here is skipped (never passed). Our side runs from
 * dist/ via bin/filebus, so build first (npm test does).
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BIN, tempDir } from '../helpers/cli.js';
import { killAll, waitForWatch } from '../helpers/procs.js';
import { until } from '../helpers/wait.js';
import {
  OURS, describeExit, exitWithin, isInterleaving, referenceImpl, startBus,
  type BusProcess, type Impl,
} from './bus-process.js';

const REFERENCE = process.env.FILEBUS_REFERENCE?.trim() || undefined;
const SUITE = REFERENCE
  ? `interop with the reference filebus (${REFERENCE})`
  : 'interop with the reference filebus [SKIPPED: FILEBUS_REFERENCE is not set; ' +
    'set it to a reference filebus launcher, e.g. FILEBUS_REFERENCE=$(test/interop/setup-reference.sh)]';

/** Random bytes with NULs inside and a last byte that is not a newline. */
function binary(size: number): Buffer {
  const data = randomBytes(size);
  for (let i = 0; i < size; i += 97) data[i] = 0;
  if (size > 1) data[size - 2] = 0;
  if (size > 0 && data[size - 1] === 0x0a) data[size - 1] = 0x0b;
  return data;
}

/** Names of the files left in the bus directory. */
function leftovers(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

/** Equality with a useful message instead of a megabyte diff. */
function expectSameBytes(actual: Buffer, expected: Buffer, what: string): void {
  if (actual.equals(expected)) return;
  let at = 0;
  while (at < Math.min(actual.length, expected.length) && actual[at] === expected[at]) at++;
  expect.fail(`${what}: got ${actual.length} bytes, expected ${expected.length}; first difference at byte ${at}`);
}

describe.skipIf(!REFERENCE)(SUITE, () => {
  const REF = referenceImpl(REFERENCE ?? '/nonexistent');
  const DIRECTIONS: Array<[string, Impl, Impl]> = [
    ['reference producer -> our consumer', REF, OURS],
    ['our producer -> reference consumer', OURS, REF],
  ];
  let work: string;
  let bus: string;

  beforeAll(() => {
    // A set but broken FILEBUS_REFERENCE is a failure, not a skip.
    fs.accessSync(REFERENCE!, fs.constants.X_OK);
    const help = execFileSync(REFERENCE!, ['--help'], { encoding: 'utf8', timeout: 20_000 });
    expect(help, 'FILEBUS_REFERENCE --help').toMatch(/producer/);
    expect(help).toMatch(/--back-pressure/);
    expect(fs.existsSync(path.resolve(BIN, '../../dist/cli/main.js')), 'dist/ is built').toBe(true);
  });

  afterEach(async () => {
    await killAll();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  function setup(): { dataDir: string } {
    work = tempDir('filebus-interop-');
    const busDir = path.join(work, 'bus');
    const dataDir = path.join(work, 'data');
    fs.mkdirSync(busDir);
    fs.mkdirSync(dataDir);
    bus = path.join(busDir, 'bus');
    return { dataDir };
  }

  function dataFile(dataDir: string, data: Buffer): string {
    const file = path.join(dataDir, `input-${data.length}`);
    fs.writeFileSync(file, data);
    return file;
  }

  /**
   * One back-pressure transfer: both sides exit 0 on their own (the consumer
   * because of the producer's empty end marker) and the bus is left with
   * nothing but FILE.lock.
   */
  async function backPressure(
    producerImpl: Impl, consumerImpl: Impl, data: Buffer,
    opts: { blockSize?: number; consumerFirst: boolean; timeoutMs: number; referenceOptions?: string[] },
  ): Promise<void> {
    const { dataDir } = setup();
    const input = dataFile(dataDir, data);
    const common = ['--back-pressure', '--filename', bus];
    const extra = (impl: Impl): string[] => (impl === REF ? opts.referenceOptions ?? [] : []);
    const producerArgs = [...extra(producerImpl), ...common, ...(opts.blockSize ? ['--block-size', String(opts.blockSize)] : [])];
    const consumerArgs = [...extra(consumerImpl), ...common];
    let consumer: BusProcess | undefined;
    if (opts.consumerFirst) consumer = startBus(consumerImpl, 'consumer', consumerArgs);
    const producer = startBus(producerImpl, 'producer', producerArgs, { stdinFile: input });
    if (!consumer) {
      // The producer publishes its first chunk (or the end marker) and waits for it to be taken.
      await until(() => fs.existsSync(bus) || !producer.running(), 'the first chunk', 20_000);
      consumer = startBus(consumerImpl, 'consumer', consumerArgs);
    }
    const [pExit, cExit] = await Promise.all([
      exitWithin(producer, opts.timeoutMs, 'producer'),
      exitWithin(consumer, opts.timeoutMs, 'consumer (waiting for the end marker)'),
    ]);
    expect(pExit.code, describeExit(producer, pExit)).toBe(0);
    expect(cExit.code, describeExit(consumer, cExit)).toBe(0);
    expectSameBytes(cExit.stdout, data, `${consumerImpl.name} consumer output`);
    expect(leftovers(path.dirname(bus)), 'files left on the bus').toEqual(['bus.lock']);
  }

  for (const [direction, producerImpl, consumerImpl] of DIRECTIONS) {
    describe(`back-pressure: ${direction}`, () => {
      it('a small binary message (NULs, no trailing newline), consumer started first; consumer exits 0 at the end marker', async () => {
        await backPressure(producerImpl, consumerImpl, binary(37), { consumerFirst: true, timeoutMs: 20_000 });
      });

      it('empty input: only the end marker travels, the consumer exits 0 with no output', async () => {
        await backPressure(producerImpl, consumerImpl, Buffer.alloc(0), { consumerFirst: true, timeoutMs: 20_000 });
      });

      it('1 MiB at the default block sizes, producer started first', async () => {
        // The reference polls every --sleep-interval per chunk: at 0.1 s its 256
        // default 4 KiB chunks would take ~26 s, so it polls every 10 ms here.
        await backPressure(producerImpl, consumerImpl, binary(1 << 20), {
          consumerFirst: false, timeoutMs: 90_000, referenceOptions: ['--sleep-interval', '0.01'],
        });
      }, 120_000);

      it('20 MiB with --block-size 1048576', async () => {
        await backPressure(producerImpl, consumerImpl, binary(20 << 20), { blockSize: 1 << 20, consumerFirst: true, timeoutMs: 60_000 });
      }, 90_000);
    });

    describe(`lossy: ${direction}`, () => {
      // Note: the reference lossy consumer's inotify watch is on FILE's inode,
      // which the first rename replaces; from then on it only polls, every
      // --sleep-interval (0.1 s). Messages 100 ms apart race that poll, hence
      // the pacing below.
      const consumerOptions = (): string[] => ['--filename', bus];

      it('a slow producer (a message every 100 ms): every message arrives once, in order', async () => {
        setup();
        const messages = Array.from({ length: 20 }, (_, i) => binary(1 + ((i * 53) % 300)));
        const expected = Buffer.concat(messages);
        const consumer = startBus(consumerImpl, 'consumer', consumerOptions());
        const producer = startBus(producerImpl, 'producer', ['--filename', bus]);
        // At least 100 ms between messages, and never before the previous one
        // has arrived: on a loaded machine a stalled process could otherwise
        // bunch two messages into two chunks a moment apart, and lossy mode
        // may drop the first. What is tested is the protocol, not the scheduler.
        let sent = 0;
        for (const message of messages) {
          if (sent > 0) await delay(100);
          await producer.write(message);
          sent += message.length;
          await until(() => consumer.stdoutBytes() >= sent || !consumer.running(), 'the consumer to have what was sent', 20_000).catch(() => {
            expect.fail(`the ${consumerImpl.name} consumer has ${consumer.stdoutBytes()} of the ${sent} bytes sent so far`);
          });
        }
        producer.endInput();
        const pExit = await exitWithin(producer, 20_000, 'producer at end of input');
        expect(pExit.code, describeExit(producer, pExit)).toBe(0);
        await delay(300); // room for a duplicate to show up
        expect(consumer.running(), 'a lossy consumer never exits on its own').toBe(true);
        const cExit = await consumer.stop();
        expectSameBytes(cExit.stdout, expected, `${consumerImpl.name} lossy consumer output`);
        expect(leftovers(path.dirname(bus))).toEqual(['bus', 'bus.lock']);
      });

      // Issue 13, point 5. A reference consumer started before FILE exists
      // cannot watch it: it looks every --sleep-interval until FILE appears.
      // A producer that replaced the first chunk at once (the second message
      // came while the first was being published) lost it for that consumer
      // (in most runs, on the old code). Each run starts on a new bus.
      it('consumer started before FILE exists, the second message sent as soon as the first is at FILE: both arrive, in order', async () => {
        for (let run = 0; run < 5; run++) {
          if (work) fs.rmSync(work, { recursive: true, force: true });
          setup();
          const first = binary(11 + run);
          const second = binary(23);
          const consumer = startBus(consumerImpl, 'consumer', [...(consumerImpl === REF ? ['-v', '-v'] : []), '--filename', bus]);
          // Looking for FILE: the reference's event loop is running (its debug log says so), ours has its watch.
          if (consumerImpl === REF) await until(() => consumer.stderr().includes('Using selector'), 'the reference consumer to run', 20_000);
          else await waitForWatch(consumer.child.pid!);
          // Our producer holds its first chunk for two of its --sleep-intervals:
          // 0.5 s here, so that the reference's 0.1 s polls get several chances
          // even on a loaded machine (the old code did not hold it at all).
          const producer = startBus(producerImpl, 'producer', [...(producerImpl === OURS ? ['--sleep-interval', '0.5'] : []), '--filename', bus]);
          await producer.write(first);
          await until(() => fs.existsSync(bus), 'the first chunk at FILE', 20_000);
          await producer.write(second);
          await until(() => consumer.stdoutBytes() >= first.length + second.length, 'both chunks', 5_000).catch(() => {});
          producer.endInput();
          const pExit = await exitWithin(producer, 20_000, 'producer at end of input');
          expect(pExit.code, describeExit(producer, pExit)).toBe(0);
          await delay(200); // room for a duplicate to show up
          const cExit = await consumer.stop();
          expectSameBytes(cExit.stdout, Buffer.concat([first, second]), `run ${run}: ${consumerImpl.name} lossy consumer output`);
        }
      }, 120_000);

      // The reference producer publishes a 1 MiB file as one chunk at this block
      // size, so even a polling lossy consumer gets all of it. A producer that
      // cuts it into read-sized (64 KiB) chunks published a moment apart loses
      // all but the last chunks for a lossy consumer.
      it('a 1 MiB message with --block-size 1048576 arrives whole', async () => {
        const { dataDir } = setup();
        const data = binary(1 << 20);
        const input = dataFile(dataDir, data);
        const consumer = startBus(consumerImpl, 'consumer', consumerOptions());
        await delay(500); // the consumer is watching before anything is published
        const producer = startBus(producerImpl, 'producer', ['--block-size', String(1 << 20), '--filename', bus], { stdinFile: input });
        const pExit = await exitWithin(producer, 20_000, 'producer at end of input');
        expect(pExit.code, describeExit(producer, pExit)).toBe(0);
        await until(() => consumer.stdoutBytes() >= data.length, 'the whole message', 10_000).catch(() => {});
        await delay(300);
        const cExit = await consumer.stop();
        expectSameBytes(cExit.stdout, data, `${consumerImpl.name} lossy consumer output`);
      });
    });
  }

  for (const producerImpl of [REF, OURS]) {
    it(`back-pressure, ${producerImpl.name} producer: one reference and one of our consumers share the chunks, each exactly once`, async () => {
      const { dataDir } = setup();
      const data = binary(2 << 20);
      const common = ['--back-pressure', '--filename', bus];
      const refConsumer = startBus(REF, 'consumer', common);
      const producer = startBus(producerImpl, 'producer', [...common, '--block-size', '65536']);
      // The reference consumer takes the first chunks; ours joins in mid-stream,
      // and the rest of the input comes only once ours waits for chunks: on a
      // loaded machine the reference could otherwise take all of them before
      // ours has started.
      const half = data.length / 2;
      await producer.write(data.subarray(0, half));
      await until(() => refConsumer.stdoutBytes() > 0, 'the reference consumer\'s first chunk', 20_000);
      const ourConsumer = startBus(OURS, 'consumer', common);
      await waitForWatch(ourConsumer.child.pid!);
      await producer.write(data.subarray(half));
      producer.endInput();
      const pExit = await exitWithin(producer, 60_000, 'producer');
      expect(pExit.code, describeExit(producer, pExit)).toBe(0);
      // Exactly one consumer takes the end marker and exits 0; the other keeps waiting.
      const first = await Promise.race([
        refConsumer.ended.then((exit) => ({ proc: refConsumer, exit })),
        ourConsumer.ended.then((exit) => ({ proc: ourConsumer, exit })),
        delay(20_000).then(() => undefined),
      ]);
      expect(first, 'a consumer exits at the end marker').toBeDefined();
      expect(first!.exit.code, describeExit(first!.proc, first!.exit)).toBe(0);
      await delay(300);
      const other = first!.proc === refConsumer ? ourConsumer : refConsumer;
      expect(other.running(), 'the end marker is taken once').toBe(true);
      await other.stop();
      const fromRef = refConsumer.stdout();
      const fromOurs = ourConsumer.stdout();
      expect(fromRef.length, 'the reference consumer got chunks').toBeGreaterThan(0);
      expect(fromOurs.length, 'our consumer got chunks').toBeGreaterThan(0);
      expect(fromRef.length + fromOurs.length, 'bytes delivered in all').toBe(data.length);
      expect(isInterleaving(data, fromRef, fromOurs), 'the two outputs are the input cut into chunks, each delivered once').toBe(true);
      expect(leftovers(path.dirname(bus))).toEqual(['bus.lock']);
    }, 90_000);
  }
});
