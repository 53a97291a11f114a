import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startFilebus, runFilebus, runShell } from '../helpers/procs.js';
import { within, until } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { listTree } from '../helpers/bus-layout.js';
import { RECORD_SIZE, records, parseRecords, seqsOf, range } from '../helpers/records.js';

// A consumer whose stdout goes nowhere must not take the stream, and a
// producer whose stdin is not a stream must not publish an end marker
// (issue 13, points 3 and 4). Node reopens a closed fd 0/1/2 as /dev/null
// read-write before any of our code runs (src/cli/standard-streams.ts).

const tmp = useBusDir('filebus-stdio-', { ownDir: true });

const COUNT = 100;
const ONE_LINE = /^filebus: [^\n]+\n$/;

function inputFile(): string {
  const file = path.join(tmp.dir, 'input');
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
    const common = ['--filename', tmp.bus, '--back-pressure', '--block-size', String(RECORD_SIZE * 10)];
    const producer = startFilebus([...common, 'producer'], { stdin: { file: inputFile() } });
    await until(() => fs.existsSync(tmp.bus), 'the first chunk at FILE', 15_000);
    expectRefused(await shell([...common, 'consumer'], '>&-'), /standard output is closed/);
    expectRefused(await shell([...common, 'consumer'], '1</dev/null'), /standard output is open for reading only/);
    const consumer = await runFilebus([...common, 'consumer'], { stdin: 'ignore' });
    expect(consumer.code).toBe(0);
    expect(seqsOf(parseRecords(consumer.stdout), 'R')).toEqual(range(COUNT));
    expect(await within(producer.done, 15_000, 'the producer')).toEqual({ code: 0, signal: null });
    expect(listTree(tmp.busDir)).toEqual(['bus.lock']);
  });

  it('multicast, named: `consumer >&-` exits 1 without creating or moving its cursor', async () => {
    const common = ['--filename', tmp.bus, '--multicast', '--block-size', String(RECORD_SIZE * 10)];
    const producer = await runFilebus([...common, 'producer'], { stdin: { file: inputFile() } });
    expect(producer.code).toBe(0);
    expectRefused(await shell([...common, '--name', 'keeper', 'consumer'], '>&-'), /standard output is closed/);
    expect(fs.readdirSync(`${tmp.bus}.consumers`)).toEqual([]);
    const consumer = await runFilebus([...common, '--name', 'keeper', 'consumer'], { stdin: 'ignore' });
    expect(consumer.code).toBe(0);
    expect(seqsOf(parseRecords(consumer.stdout), 'R')).toEqual(range(COUNT));
  });

  it('lossy: `consumer >&-` exits 1', async () => {
    expectRefused(await shell(['--filename', tmp.bus, 'consumer'], '>&-'), /standard output is closed/);
    expect(listTree(tmp.busDir)).toEqual([]);
  });

  it('`consumer > /dev/null` still drains the bus and exits 0', async () => {
    const common = ['--filename', tmp.bus, '--back-pressure'];
    const producer = startFilebus([...common, 'producer'], { stdin: { file: inputFile() } });
    expect(await within(shell([...common, 'consumer'], '> /dev/null'), 15_000, 'the consumer')).toEqual({ code: 0, stderr: '' });
    expect(await within(producer.done, 15_000, 'the producer')).toEqual({ code: 0, signal: null });
    expect(listTree(tmp.busDir)).toEqual(['bus.lock']);
  });
});

describe('a producer whose stdin is not a stream publishes nothing', () => {
  for (const mode of ['back-pressure', 'multicast', 'lossy'] as const) {
    const flags = mode === 'lossy' ? [] : [`--${mode}`];
    it(`${mode}: stdin a directory, closed, or write-only: exit 1, nothing on disk`, async () => {
      const common = ['--filename', tmp.bus, ...flags];
      expectRefused(await shell([...common, 'producer'], `< "${tmp.dir}"`), /standard input is a directory/);
      expectRefused(await shell([...common, 'producer'], '<&-'), /standard input is closed/);
      expectRefused(await shell([...common, 'producer'], `0>"${path.join(tmp.dir, 'sink')}"`), /standard input is open for writing only/);
      expect(listTree(tmp.busDir)).toEqual([]);
    });
  }

  it('back-pressure: after a refused `producer < DIR`, the next consumer gets the next stream, not an early end', async () => {
    const common = ['--filename', tmp.bus, '--back-pressure'];
    expectRefused(await shell([...common, 'producer'], `< "${tmp.dir}"`), /directory/);
    const consumer = startFilebus([...common, 'consumer'], { stdin: 'ignore' });
    const producer = await runFilebus([...common, 'producer'], { stdin: { file: inputFile() } });
    expect(producer.code).toBe(0);
    expect(await within(consumer.done, 15_000, 'the consumer')).toEqual({ code: 0, signal: null });
    expect(seqsOf(parseRecords(consumer.stdout()), 'R')).toEqual(range(COUNT));
  });

  it('`producer < /dev/null` still publishes an empty stream (the end marker)', async () => {
    const common = ['--filename', tmp.bus, '--back-pressure'];
    expect(await shell([...common, 'producer'], '< /dev/null')).toEqual({ code: 0, stderr: '' });
    expect(fs.statSync(tmp.bus).size).toBe(0);
  });
});
