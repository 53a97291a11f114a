import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runShell, tempDir, waitUntil } from '../helpers/cli.js';
import { killAll, listTree, runFilebus, startFilebus, withTimeout } from '../helpers/procs.js';
import { parseRecords, range, records, RECORD_SIZE, seqsOf } from '../helpers/records.js';

// A consumer whose stdout goes nowhere must not take the stream, and a
// producer whose stdin is not a stream must not publish an end marker
// (issue 13, points 3 and 4). Node reopens a closed fd 0/1/2 as /dev/null
// read-write before any of our code runs (src/cli/standard-streams.ts).

let dir: string;
let busDir: string;
let bus: string;

beforeEach(() => {
  dir = tempDir('filebus-stdio-');
  busDir = path.join(dir, 'bus-dir');
  fs.mkdirSync(busDir);
  bus = path.join(busDir, 'bus');
});

afterEach(async () => {
  await killAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

const COUNT = 100;
const ONE_LINE = /^filebus: [^\n]+\n$/;

function inputFile(): string {
  const file = path.join(dir, 'input');
  fs.writeFileSync(file, records('R', COUNT));
  return file;
}

/** `filebus ARGS` run by sh with the redirection `redirect` (e.g. `>&-`). */
function shell(args: readonly string[], redirect: string): Promise<{ code: number | null; stderr: string }> {
  return runShell(`"$NODE" "$BIN" "$@" ${redirect}`, args);
}

function expectRefused(result: { code: number | null; stderr: string }, problem: RegExp): void {
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(ONE_LINE);
  expect(result.stderr).toMatch(problem);
}

describe('a consumer whose stdout is closed takes nothing', () => {
  it('back-pressure: `consumer >&-` exits 1 and every chunk is still there for the next consumer', async () => {
    const common = ['--filename', bus, '--back-pressure', '--block-size', String(RECORD_SIZE * 10)];
    const producer = startFilebus([...common, 'producer'], { stdin: { file: inputFile() } });
    await waitUntil(() => fs.existsSync(bus), 15_000, 'the first chunk at FILE');
    expectRefused(await shell([...common, 'consumer'], '>&-'), /standard output is closed/);
    expectRefused(await shell([...common, 'consumer'], '1</dev/null'), /standard output is open for reading only/);
    const consumer = await runFilebus([...common, 'consumer'], { stdin: 'ignore' });
    expect(consumer.code).toBe(0);
    expect(seqsOf(parseRecords(consumer.stdout), 'R')).toEqual(range(COUNT));
    expect(await withTimeout(producer.done, 15_000, 'the producer')).toEqual({ code: 0, signal: null });
    expect(listTree(busDir)).toEqual(['bus.lock']);
  });

  it('multicast, named: `consumer >&-` exits 1 without creating or moving its cursor', async () => {
    const common = ['--filename', bus, '--multicast', '--block-size', String(RECORD_SIZE * 10)];
    const producer = await runFilebus([...common, 'producer'], { stdin: { file: inputFile() } });
    expect(producer.code).toBe(0);
    expectRefused(await shell([...common, '--name', 'keeper', 'consumer'], '>&-'), /standard output is closed/);
    expect(fs.readdirSync(`${bus}.consumers`)).toEqual([]);
    const consumer = await runFilebus([...common, '--name', 'keeper', 'consumer'], { stdin: 'ignore' });
    expect(consumer.code).toBe(0);
    expect(seqsOf(parseRecords(consumer.stdout), 'R')).toEqual(range(COUNT));
  });

  it('lossy: `consumer >&-` exits 1', async () => {
    expectRefused(await shell(['--filename', bus, 'consumer'], '>&-'), /standard output is closed/);
    expect(listTree(busDir)).toEqual([]);
  });

  it('`consumer > /dev/null` still drains the bus and exits 0', async () => {
    const common = ['--filename', bus, '--back-pressure'];
    const producer = startFilebus([...common, 'producer'], { stdin: { file: inputFile() } });
    expect(await withTimeout(shell([...common, 'consumer'], '> /dev/null'), 15_000, 'the consumer')).toEqual({ code: 0, stderr: '' });
    expect(await withTimeout(producer.done, 15_000, 'the producer')).toEqual({ code: 0, signal: null });
    expect(listTree(busDir)).toEqual(['bus.lock']);
  });
});

describe('a producer whose stdin is not a stream publishes nothing', () => {
  for (const mode of ['back-pressure', 'multicast', 'lossy'] as const) {
    const flags = mode === 'lossy' ? [] : [`--${mode}`];
    it(`${mode}: stdin a directory, closed, or write-only: exit 1, nothing on disk`, async () => {
      const common = ['--filename', bus, ...flags];
      expectRefused(await shell([...common, 'producer'], `< "${dir}"`), /standard input is a directory/);
      expectRefused(await shell([...common, 'producer'], '<&-'), /standard input is closed/);
      expectRefused(await shell([...common, 'producer'], `0>"${path.join(dir, 'sink')}"`), /standard input is open for writing only/);
      expect(listTree(busDir)).toEqual([]);
    });
  }

  it('back-pressure: after a refused `producer < DIR`, the next consumer gets the next stream, not an early end', async () => {
    const common = ['--filename', bus, '--back-pressure'];
    expectRefused(await shell([...common, 'producer'], `< "${dir}"`), /directory/);
    const consumer = startFilebus([...common, 'consumer'], { stdin: 'ignore' });
    const producer = await runFilebus([...common, 'producer'], { stdin: { file: inputFile() } });
    expect(producer.code).toBe(0);
    expect(await withTimeout(consumer.done, 15_000, 'the consumer')).toEqual({ code: 0, signal: null });
    expect(seqsOf(parseRecords(consumer.stdout()), 'R')).toEqual(range(COUNT));
  });

  it('`producer < /dev/null` still publishes an empty stream (the end marker)', async () => {
    const common = ['--filename', bus, '--back-pressure'];
    expect(await shell([...common, 'producer'], '< /dev/null')).toEqual({ code: 0, stderr: '' });
    expect(fs.statSync(bus).size).toBe(0);
  });
});
