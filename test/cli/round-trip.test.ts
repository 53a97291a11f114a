import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256, randomData, GENERATOR_SOURCE, exclusively } from '../helpers/cli.js';
import { startProcess, startFilebus } from '../helpers/procs.js';
import { within, until } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { listTree } from '../helpers/bus-layout.js';

const tmp = useBusDir('filebus-cli-rt-', { ownDir: true });

/** Compares large buffers without printing megabytes on failure. */
function expectSameBytes(actual: Buffer, expected: Buffer): void {
  if (expected.length > 100_000) {
    expect({ length: actual.length, sha256: sha256(actual) }).toEqual({ length: expected.length, sha256: sha256(expected) });
  } else {
    expect(actual.equals(expected), `output (${actual.length} bytes) differs from input (${expected.length} bytes)`).toBe(true);
  }
}

interface RoundTripOptions {
  blockSize?: number;
  /** How the producer gets its input. */
  via: 'pipe' | 'file';
  /** Start the producer first and the consumer once the first chunk is on the bus. */
  producerFirst?: boolean;
  /** Extra flags for both ends (e.g. --no-file-monitoring). */
  flags?: string[];
  modeFlag?: '--back-pressure' | '--lossless';
  /** Where the bus is (default: the test's bus directory). */
  busDir?: string;
}

/** One back-pressure producer and one consumer carry `input` over the bus; both must exit 0. */
async function backPressureRoundTrip(input: Buffer, options: RoundTripOptions): Promise<void> {
  const busDir = options.busDir ?? tmp.busDir;
  const bus = path.join(busDir, 'bus');
  const common = [
    '--filename', bus, options.modeFlag ?? '--back-pressure',
    ...(options.blockSize !== undefined ? ['--block-size', String(options.blockSize)] : []),
    ...(options.flags ?? []),
  ];
  const startProducer = () => {
    if (options.via === 'file') {
      const inputFile = path.join(tmp.dir, 'input.bin');
      fs.writeFileSync(inputFile, input);
      return startFilebus([...common, 'producer'], { stdin: { file: inputFile } });
    }
    const producer = startFilebus([...common, 'producer'], { stdin: 'pipe' });
    producer.child.stdin!.end(input);
    return producer;
  };
  let producer;
  let consumer;
  if (options.producerFirst) {
    producer = startProducer();
    await until(() => fs.existsSync(bus), 'the first chunk on the bus', 15_000);
    consumer = startFilebus([...common, 'consumer'], { stdin: 'ignore' });
  } else {
    consumer = startFilebus([...common, 'consumer'], { stdin: 'ignore' });
    producer = startProducer();
  }
  const [producerExit, consumerExit] = await within(Promise.all([producer.done, consumer.done]), 60_000, 'producer and consumer');
  expect(producer.stderr()).toBe('');
  expect(consumer.stderr()).toBe('');
  expect(producerExit).toEqual({ code: 0, signal: null });
  expect(consumerExit).toEqual({ code: 0, signal: null });
  expectSameBytes(consumer.stdout(), input);
  // The consumer removed the end marker; the producer left no temporary file.
  expect(listTree(busDir)).toEqual(['bus.lock']);
}

describe('back-pressure round trip, default block size', () => {
  const sizes = [0, 1, 4095, 65537, 5 * 1024 * 1024];
  for (const size of sizes) {
    for (const via of ['pipe', 'file'] as const) {
      it(`${size} random bytes through a stdin ${via}`, async () => {
        await backPressureRoundTrip(randomData(size), { via });
      });
    }
  }

  it('producer started before the consumer', async () => {
    await backPressureRoundTrip(randomData(300_001), { via: 'pipe', producerFirst: true });
  });

  it('--lossless is the same mode as --back-pressure', async () => {
    await backPressureRoundTrip(randomData(100_003), { via: 'pipe', modeFlag: '--lossless' });
  });

  it('FILE in directories that do not exist yet: the producer creates them (a consumer creates none: new-user.test.ts)', async () => {
    const busDir = path.join(tmp.dir, 'not', 'yet', 'there');
    await backPressureRoundTrip(randomData(70_000), { via: 'pipe', busDir, producerFirst: true });
    expect(fs.statSync(busDir).isDirectory()).toBe(true);
  });

  it('polling only: --no-file-monitoring with a short --sleep-interval', async () => {
    await backPressureRoundTrip(randomData(40_000), {
      via: 'file',
      blockSize: 4096,
      flags: ['--no-file-monitoring', '--sleep-interval', '0.005'],
    });
  });
});

describe('back-pressure round trip, several block sizes', () => {
  const cases: Array<[blockSize: number, size: number]> = [
    [1, 60],
    [7, 7 * 40 + 3],
    [4096, 256 * 1024 + 13],
    [1024 * 1024, 5 * 1024 * 1024 + 3],
  ];
  for (const [blockSize, size] of cases) {
    it(`--block-size ${blockSize}, ${size} bytes`, async () => {
      await backPressureRoundTrip(randomData(size), { via: 'pipe', blockSize });
    });
  }
});

describe('back-pressure round trip of content no text tool would survive', () => {
  // NUL bytes everywhere, CR, lone high bytes, and no trailing newline.
  const awkward = Buffer.concat([
    Buffer.from([0, 0, 0]),
    Buffer.from('line one\0with NUL\r\nline two\n\n'),
    Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x0a, 0x00]),
    Buffer.alloc(64, 0),
    Buffer.from('ends without newline\0x'),
  ]);

  for (const blockSize of [undefined, 7, 4096]) {
    for (const via of ['pipe', 'file'] as const) {
      it(`NUL bytes, no trailing newline, block size ${blockSize ?? 'default'}, via ${via}`, async () => {
        await backPressureRoundTrip(awkward, { via, blockSize });
      });
    }
  }
});

describe('back-pressure round trip of 1 GiB', () => {
  it('1 GiB from a deterministic generator, compared by sha256 streamed on both ends', () => exclusively('timing', async () => {
    const size = 1024 * 1024 * 1024;
    const digestFile = path.join(tmp.dir, 'generator.sha256');
    const common = ['--filename', tmp.bus, '--back-pressure', '--block-size', String(1024 * 1024)];
    // consumer stdout is hashed as it arrives, never held in memory.
    const consumer = startFilebus([...common, 'consumer'], { stdin: 'ignore', stdout: 'hash' });
    // generator | filebus producer, through a real pipe; pipefail keeps a generator failure visible.
    const pipeline = startProcess('bash', [
      '-c',
      'set -o pipefail; "$NODE" -e "$GEN" "$SIZE" seed-1g "$DIGEST" | "$NODE" "$BIN" "$@"',
      'bash', ...common, 'producer',
    ], {
      stdin: 'ignore',
      env: {
        NODE: process.execPath,
        GEN: GENERATOR_SOURCE,
        SIZE: String(size),
        DIGEST: digestFile,
        BIN: path.resolve(__dirname, '../../bin/filebus'),
      },
    });
    const [producerExit, consumerExit] = await within(Promise.all([pipeline.done, consumer.done]), 280_000, '1 GiB round trip');
    expect(pipeline.stderr()).toBe('');
    expect(consumer.stderr()).toBe('');
    expect(producerExit).toEqual({ code: 0, signal: null });
    expect(consumerExit).toEqual({ code: 0, signal: null });
    const [generatorSha, generatorBytes] = fs.readFileSync(digestFile, 'utf8').trim().split(' ');
    expect(Number(generatorBytes)).toBe(size);
    expect(consumer.stdoutBytes()).toBe(size);
    expect(consumer.stdoutSha256()).toBe(generatorSha);
    expect(listTree(tmp.busDir)).toEqual(['bus.lock']);
  }), 300_000);
});

describe('lossy round trip', () => {
  // Timing matters here (a lossy consumer that looks too late misses a
  // message), so this waits for the CPU-heavy tests of other files to finish.
  it('a slow producer (one message every 50 ms through a pipe): the consumer gets each message exactly once, in order', () => exclusively('timing', async () => {
    const consumer = startFilebus(['--filename', tmp.bus, 'consumer'], { stdin: 'ignore' });
    const producer = startFilebus(['--filename', tmp.bus, 'producer'], { stdin: 'pipe' });
    // Handshake: a consumer prints the current chunk when it starts, so once
    // it has printed this one, it is watching.
    const hello = 'hello\n';
    producer.child.stdin!.write(hello);
    await until(() => consumer.stdout().toString() === hello, 'the hello message', 15_000);
    const messages = Array.from({ length: 40 }, (_, i) => `message ${String(i).padStart(3, '0')} ${'x'.repeat(i % 7)}\n`);
    for (const message of messages) {
      producer.child.stdin!.write(message);
      await new Promise((r) => setTimeout(r, 50));
    }
    producer.child.stdin!.end();
    expect(await within(producer.done, 15_000, 'the producer')).toEqual({ code: 0, signal: null });
    const expected = hello + messages.join('');
    // On a timeout, fall through: the comparison below shows what arrived.
    await until(() => consumer.stdout().toString().endsWith(messages.at(-1)!), 'the last message', 15_000).catch(() => {});
    // Lossy consumers never exit on their own; give a duplicate the chance to show up first.
    await new Promise((r) => setTimeout(r, 300));
    expect(consumer.running()).toBe(true);
    // SIGKILL: how a consumer handles SIGTERM is tested in safety.test.ts.
    consumer.child.kill('SIGKILL');
    expect(await consumer.done).toEqual({ code: null, signal: 'SIGKILL' });
    expect(producer.stderr()).toBe('');
    expect(consumer.stderr()).toBe('');
    // Line by line first, for a readable difference; then the exact bytes.
    expect(consumer.stdout().toString().split('\n')).toEqual(expected.split('\n'));
    expect(consumer.stdout().toString()).toBe(expected);
  }), 300_000);
});
