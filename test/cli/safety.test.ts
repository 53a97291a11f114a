import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256, randomData } from '../helpers/cli.js';
import { startProcess, startFilebus, runFilebus, waitForWatch, type Proc } from '../helpers/procs.js';
import { within, until } from '../helpers/wait.js';
import { carry, drainWithNextConsumer } from '../helpers/back-pressure.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { tempFiles, lockState, listTree } from '../helpers/bus-layout.js';
import { RECORD_SIZE, records, parseRecords, seqsOf, range, isIncreasing } from '../helpers/records.js';

const tmp = useBusDir('filebus-cli-safety-', { ownDir: true });

function expectNoStackTrace(stderr: string): void {
  expect(stderr).not.toMatch(/^\s+at /m);
}

describe('symlinks planted at temporary names', () => {
  it('a producer never writes through a symlink at FILE.__new__ or other likely temp names', async () => {
    const victim = path.join(tmp.dir, 'victim.txt');
    const precious = Buffer.from('precious content that must survive\n');
    fs.writeFileSync(victim, precious);
    const before = fs.statSync(victim);
    const planted = ['bus.__new__', '.bus.__new__', 'bus.new', '.bus.new', 'bus.tmp', '.bus.tmp', 'bus~', '.bus.swp'];
    for (const name of planted) fs.symlinkSync(victim, path.join(tmp.busDir, name));

    // Back-pressure, several chunks.
    const input = randomData(200_000);
    const output = await carry(tmp.bus, input, ['--block-size', '4096']);
    expect(output.equals(input)).toBe(true);
    // Lossy, several chunks; FILE ends up holding the last one.
    const lossyInput = randomData(10_000);
    const lossyFile = path.join(tmp.dir, 'lossy-input.bin');
    fs.writeFileSync(lossyFile, lossyInput);
    const lossy = await runFilebus(['--filename', tmp.bus, '--block-size', '3000', 'producer'], { stdin: { file: lossyFile } });
    expect(lossy).toMatchObject({ code: 0, signal: null, stderr: '' });
    expect(fs.lstatSync(tmp.bus).isFile()).toBe(true);
    expect(fs.readFileSync(tmp.bus).equals(lossyInput.subarray(9000))).toBe(true);

    expect(fs.readFileSync(victim).equals(precious)).toBe(true);
    const after = fs.statSync(victim);
    expect({ size: after.size, mtimeMs: after.mtimeMs, ino: after.ino }).toEqual({ size: before.size, mtimeMs: before.mtimeMs, ino: before.ino });
    // The planted links are untouched, and nothing else was left behind.
    expect(listTree(tmp.busDir)).toEqual(
      ['bus', 'bus.lock', ...planted.map((name) => `${name} -> ${victim}`)].sort(),
    );
  });
});

describe('two producers, one back-pressure bus', () => {
  it('records of two concurrent producers arrive whole, each producer in order, none lost or repeated', async () => {
    const count = 1500;
    const recordsPerChunk = 16;
    const files = { A: path.join(tmp.dir, 'a.bin'), B: path.join(tmp.dir, 'b.bin') };
    fs.writeFileSync(files.A, records('A', count));
    fs.writeFileSync(files.B, records('B', count));
    const common = ['--filename', tmp.bus, '--back-pressure', '--block-size', String(RECORD_SIZE * recordsPerChunk)];
    const producers = [
      startFilebus([...common, 'producer'], { stdin: { file: files.A } }),
      startFilebus([...common, 'producer'], { stdin: { file: files.B } }),
    ];
    // A back-pressure producer ends its stream with an end marker, and the
    // consumer that takes a marker exits: consume in turns until both
    // producers are done and nothing is left on the bus (one turn per
    // marker, so at most two).
    const outputs: Buffer[] = [];
    for (;;) {
      // Wait until there is something to take, or both producers are gone.
      await until(() => fs.existsSync(tmp.bus) || producers.every((p) => !p.running()), 'a chunk or the producers to finish', 60_000);
      if (!fs.existsSync(tmp.bus)) break; // both done and every marker taken
      expect(outputs.length, 'more consumer turns than end markers').toBeLessThan(2);
      const consumer = startFilebus([...common, 'consumer'], { stdin: 'ignore' });
      expect(await within(consumer.done, 60_000, `consumer ${outputs.length + 1}`)).toEqual({ code: 0, signal: null });
      expect(consumer.stderr()).toBe('');
      outputs.push(consumer.stdout());
    }
    for (const producer of producers) {
      expect(await within(producer.done, 15_000, 'a producer')).toEqual({ code: 0, signal: null });
      expect(producer.stderr()).toBe('');
    }
    expect(listTree(tmp.busDir)).toEqual(['bus.lock']);
    const parsed = parseRecords(Buffer.concat(outputs)); // throws on a torn record
    expect(seqsOf(parsed, 'A')).toEqual(range(count));
    expect(seqsOf(parsed, 'B')).toEqual(range(count));
    expect(parsed.length).toBe(2 * count);
    for (const output of outputs) {
      for (const tag of ['A', 'B']) expect(isIncreasing(seqsOf(parseRecords(output), tag))).toBe(true);
    }
  });
});

describe('SIGINT and SIGTERM', () => {
  /** The process died of `signal` itself (not an exit code), with no stack trace. */
  async function expectDeathBy(proc: Proc, signal: NodeJS.Signals): Promise<void> {
    const exit = await within(proc.done, 15_000, `death by ${signal}`);
    expect(exit, `stderr: ${proc.stderr()}`).toEqual({ code: null, signal });
    expectNoStackTrace(proc.stderr());
  }

  /**
   * After the death: no temporary file, exactly `files` in the bus
   * directory, the lock free, and a new back-pressure pair runs to the end
   * (first draining `leftover`, a chunk the dead process left on the bus).
   */
  async function expectBusUsable(leftover: Buffer, files: string[]): Promise<void> {
    expect(tempFiles(tmp.bus)).toEqual([]);
    expect(listTree(tmp.busDir)).toEqual(files);
    expect(lockState(`${tmp.bus}.lock`)).not.toBe('held');
    const fresh = randomData(50_000);
    const output = await carry(tmp.bus, fresh);
    expect(output.length).toBe(leftover.length + fresh.length);
    expect(output.equals(Buffer.concat([leftover, fresh]))).toBe(true);
  }

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} to a producer blocked in back-pressure mode with no consumer`, async () => {
      const producer = startFilebus(['--filename', tmp.bus, '--back-pressure', 'producer'], { stdin: 'pipe' });
      const first = Buffer.from('first chunk, taken by nobody\n');
      producer.child.stdin!.write(first);
      await until(() => fs.existsSync(tmp.bus), 'the first chunk', 15_000);
      producer.child.stdin!.write('second chunk, waiting for room\n');
      // The second chunk sits in a temporary file while the producer waits for FILE to go.
      await until(() => tempFiles(tmp.bus).length > 0, 'a temporary file for the second chunk', 15_000);
      expect(producer.running()).toBe(true);
      producer.child.kill(signal);
      await expectDeathBy(producer, signal);
      expect(fs.readFileSync(tmp.bus).equals(first)).toBe(true);
      await expectBusUsable(first, ['bus', 'bus.lock']);
    });

    it(`${signal} to a back-pressure consumer waiting for data`, async () => {
      const consumer = startFilebus(['--filename', tmp.bus, '--back-pressure', 'consumer'], { stdin: 'ignore' });
      await waitForWatch(consumer.pid);
      expect(consumer.running()).toBe(true);
      consumer.child.kill(signal);
      await expectDeathBy(consumer, signal);
      expect(consumer.stdoutBytes()).toBe(0);
      await expectBusUsable(Buffer.alloc(0), []);
    });

    it(`${signal} to a back-pressure consumer blocked writing a chunk: the chunk goes back on the bus`, async () => {
      // A 1 MiB chunk on the bus, placed the way the reference producer does it (its lock file, then write and rename).
      const chunk = randomData(1024 * 1024);
      fs.writeFileSync(`${tmp.bus}.lock`, '');
      fs.writeFileSync(`${tmp.bus}.__new__`, chunk);
      fs.renameSync(`${tmp.bus}.__new__`, tmp.bus);
      // Nobody reads this consumer's stdout: it blocks part way through the
      // chunk, which it has taken off FILE under a name of its own.
      const consumer = startFilebus(['--filename', tmp.bus, '--back-pressure', 'consumer'], { stdin: 'ignore', stdout: 'unread' });
      await until(() => !fs.existsSync(tmp.bus) && listTree(tmp.busDir).some((name) => name.endsWith('.taken')), 'the consumer to take the chunk', 15_000);
      await until(() => consumer.stdoutBytes() === 0 && lockState(`${tmp.bus}.lock`) === 'free', 'the lock to be free while the chunk is written out', 15_000);
      expect(consumer.running()).toBe(true);
      consumer.child.kill(signal);
      await expectDeathBy(consumer, signal);
      // It never finished writing the chunk, so the chunk is back at FILE, whole.
      expect(sha256(fs.readFileSync(tmp.bus))).toBe(sha256(chunk));
      await expectBusUsable(chunk, ['bus', 'bus.lock']);
    });
  }

  it('SIGINT to a lossy consumer', async () => {
    const consumer = startFilebus(['--filename', tmp.bus, 'consumer'], { stdin: 'ignore' });
    await waitForWatch(consumer.pid);
    consumer.child.kill('SIGINT');
    await expectDeathBy(consumer, 'SIGINT');
    await expectBusUsable(Buffer.alloc(0), []);
  });

  it('SIGTERM to a lossy producer waiting for input', async () => {
    const producer = startFilebus(['--filename', tmp.bus, 'producer'], { stdin: 'pipe' });
    producer.child.stdin!.write('published\n');
    await until(() => fs.existsSync(tmp.bus), 'the first chunk', 15_000);
    producer.child.kill('SIGTERM');
    await expectDeathBy(producer, 'SIGTERM');
    // Lossy FILE stays (it is the latest chunk); a back-pressure pair takes it as its first chunk.
    await expectBusUsable(Buffer.from('published\n'), ['bus', 'bus.lock']);
  });
});

describe('stdout closed early (filebus consumer | head -c 10)', () => {
  const binPath = path.resolve(__dirname, '../../bin/filebus');

  /** `filebus ARGS | head -c 10` in bash; returns filebus's exit status, its stderr and what head printed. */
  async function intoHead(args: string[]): Promise<{ status: number; stderr: string; head: Buffer }> {
    const errFile = path.join(tmp.dir, 'consumer.err');
    const statusFile = path.join(tmp.dir, 'consumer.status');
    const shell = startProcess('bash', [
      '-c',
      '"$NODE" "$BIN" "$@" 2>"$ERR" | head -c 10; echo "${PIPESTATUS[0]}" >"$STATUS"',
      'bash', ...args,
    ], { stdin: 'ignore', env: { NODE: process.execPath, BIN: binPath, ERR: errFile, STATUS: statusFile } });
    expect(await within(shell.done, 30_000, 'filebus consumer | head -c 10')).toEqual({ code: 0, signal: null });
    return {
      status: Number(fs.readFileSync(statusFile, 'utf8')),
      stderr: fs.readFileSync(errFile, 'utf8'),
      head: shell.stdout(),
    };
  }

  it('back-pressure: exit 141, nothing on stderr, and the interrupted chunk goes to the next consumer', async () => {
    const blockSize = 256 * 1024; // more than a pipe holds: a write can be cut off mid-chunk
    const input = randomData(8 * blockSize);
    const common = ['--filename', tmp.bus, '--back-pressure', '--block-size', String(blockSize)];
    const producer = startFilebus([...common, 'producer'], { stdin: 'pipe' });
    producer.child.stdin!.end(input);
    const first = await intoHead([...common, 'consumer']);
    expect(first.head.equals(input.subarray(0, 10))).toBe(true);
    expect(first.status).toBe(141);
    expect(first.stderr).toBe('');
    // The chunk the first consumer was writing when its output closed (the
    // first: more than the pipe to head holds) is still on the bus:
    // back at FILE, or, once the producer has published the next chunk
    // there, under the name it was taken by, for the next consumer to adopt.
    expect(producer.running()).toBe(true);
    const held = [tmp.bus, ...listTree(tmp.busDir).filter((name) => name.endsWith('.taken')).map((name) => path.join(tmp.busDir, name))]
      .filter((file) => fs.existsSync(file)).map((file) => fs.readFileSync(file));
    expect(held.some((chunk) => chunk.length > 10 && chunk.equals(input.subarray(0, chunk.length)))).toBe(true);
    // So the next consumer gets the whole stream, that chunk first, nothing lost.
    await drainWithNextConsumer(common, producer, input);
  });

  it('back-pressure: a consumer whose output is already closed exits 141 and the next consumer gets every chunk', async () => {
    const input = randomData(100_000);
    const common = ['--filename', tmp.bus, '--back-pressure', '--block-size', '10000'];
    const producer = startFilebus([...common, 'producer'], { stdin: 'pipe' });
    producer.child.stdin!.end(input);
    // The read end is closed before the consumer starts: its very first write fails.
    const first = startFilebus([...common, 'consumer'], { stdin: 'ignore', stdout: 'closed' });
    expect(await within(first.done, 30_000, 'the first consumer')).toEqual({ code: 141, signal: null });
    expect(first.stderr()).toBe('');
    expect(producer.running()).toBe(true);
    await drainWithNextConsumer(common, producer, input);
  });

  it('lossy: exit 141 and nothing on stderr', async () => {
    // A 1 MiB chunk on the bus, placed the way the reference producer does it (write, then rename).
    const chunk = randomData(1024 * 1024);
    fs.writeFileSync(`${tmp.bus}.__new__`, chunk);
    fs.renameSync(`${tmp.bus}.__new__`, tmp.bus);
    const result = await intoHead(['--filename', tmp.bus, 'consumer']);
    expect(result.head.equals(chunk.subarray(0, 10))).toBe(true);
    expect(result.status).toBe(141);
    expect(result.stderr).toBe('');
  });
});
