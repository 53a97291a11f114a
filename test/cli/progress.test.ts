/**
 * `--progress`: reports on stderr, one line per interval when stderr is not
 * a terminal, redrawn in place when it is (a pseudo-terminal from
 * util-linux script(1)); stdout carries exactly the data either way.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, randomData } from '../helpers/cli.js';
import { startProcess, startFilebus, runFilebus, type Proc } from '../helpers/procs.js';
import { within, until } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';

const tmp = useBusDir('filebus-progress-');

const REPORT = /^filebus (producer|consumer): (\d+(?:\.\d)? (?:B|KiB|MiB)) \((\d+) bytes\) in (\d+) chunks?, (\S+ (?:B|KiB|MiB)\/s), (\d+\.\d) s$/;
const FINAL = /^filebus (producer|consumer): (done|stopped): (\d+(?:\.\d)? (?:B|KiB|MiB)) \((\d+) bytes\) in (\d+) chunks?, (\d+\.\d) s, (\S+ (?:B|KiB|MiB)\/s) average$/;

interface Reports {
  intervals: { bytes: number; chunks: number }[];
  final: { outcome: string; bytes: number; chunks: number };
}

/** Parses a non-terminal progress log: every line a report, the last one final. */
function parseLines(stderr: string, role: string): Reports {
  expect(stderr.endsWith('\n')).toBe(true);
  expect(stderr).not.toMatch(/[\r\x1b]/);
  const lines = stderr.slice(0, -1).split('\n');
  const intervals = lines.slice(0, -1).map((line) => {
    const m = REPORT.exec(line);
    expect(m, `interval line: ${JSON.stringify(line)}`).not.toBeNull();
    expect(m![1]).toBe(role);
    return { bytes: Number(m![3]), chunks: Number(m![4]) };
  });
  const m = FINAL.exec(lines.at(-1)!);
  expect(m, `final line: ${JSON.stringify(lines.at(-1))}`).not.toBeNull();
  expect(m![1]).toBe(role);
  return { intervals, final: { outcome: m![2]!, bytes: Number(m![4]), chunks: Number(m![5]) } };
}

/** Feeds `parts` to a producer's stdin with `gapMs` between them, then closes it. */
async function feed(producer: Proc, parts: readonly Buffer[], gapMs: number): Promise<void> {
  for (const [i, part] of parts.entries()) {
    if (i > 0) await new Promise((r) => setTimeout(r, gapMs));
    producer.child.stdin!.write(part);
  }
  producer.child.stdin!.end();
}

describe('--progress, stderr not a terminal', () => {
  it('producer and consumer: a line per interval, a final line with the exact totals, stdout byte for byte the stream', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const parts = [randomData(300_000), randomData(200_000), randomData(100_001)];
    const input = Buffer.concat(parts);
    const common = ['--filename', bus, '--back-pressure', '--block-size', '65536', '--progress-interval', '0.1'];
    const consumer = startFilebus([...common, '--progress', 'consumer'], { stdin: 'ignore' });
    const producer = startFilebus([...common, '--progress', 'producer'], { stdin: 'pipe' });
    // Both are up and reporting before the data starts.
    await until(() => producer.stderr().includes('\n') && consumer.stderr().includes('\n'), 'first reports', 15_000);
    await feed(producer, parts, 500);
    const [p, c] = await within(Promise.all([producer.done, consumer.done]), 30_000, 'producer and consumer');
    expect(p).toEqual({ code: 0, signal: null });
    expect(c).toEqual({ code: 0, signal: null });

    expect(consumer.stdout().equals(input)).toBe(true);
    expect(producer.stdout().length).toBe(0);

    const produced = parseLines(producer.stderr(), 'producer');
    const consumed = parseLines(consumer.stderr(), 'consumer');
    for (const reports of [produced, consumed]) {
      expect(reports.final).toMatchObject({ outcome: 'done', bytes: input.length });
      // The run lasts more than 1 s: several reports at 0.1 s, their totals never going back.
      expect(reports.intervals.length).toBeGreaterThanOrEqual(3);
      for (const [i, report] of reports.intervals.entries()) {
        expect(report.bytes).toBeLessThanOrEqual(input.length);
        if (i > 0) expect(report.bytes).toBeGreaterThanOrEqual(reports.intervals[i - 1]!.bytes);
      }
    }
    // Back-pressure hands each chunk to exactly one consumer: both count the same chunks.
    expect(consumed.final.chunks).toBe(produced.final.chunks);
    expect(produced.final.chunks).toBeGreaterThanOrEqual(Math.ceil(input.length / 65536));
  });

  it('without --progress nothing is written to stderr', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const input = randomData(100_000);
    const result = await runFilebus(['--filename', bus, '--multicast', '--retain', 'all', 'producer'], { input });
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const consumer = await runFilebus(['--filename', bus, '--multicast', '--from', 'earliest', 'consumer'], { stdin: 'ignore' });
    expect(consumer).toMatchObject({ code: 0, stderr: '' });
    expect(consumer.stdout.equals(input)).toBe(true);
  });

  it('a consumer stopped by SIGINT ends with a "stopped" line and dies of the signal', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const consumer = startFilebus(['--filename', bus, '--progress', '--progress-interval', '0.1', 'consumer'], { stdin: 'ignore' });
    const message = Buffer.from('one lossy message\n');
    await until(() => consumer.stderr().split('\n').length >= 2, 'a first report', 15_000);
    const producer = await runFilebus(['--filename', bus, 'producer'], { input: message });
    expect(producer.code).toBe(0);
    await until(() => consumer.stdout().length === message.length, 'the message at the consumer', 15_000);
    process.kill(consumer.pid, 'SIGINT');
    expect(await within(consumer.done, 15_000, 'consumer')).toEqual({ code: null, signal: 'SIGINT' });
    expect(consumer.stdout().equals(message)).toBe(true);
    expect(parseLines(consumer.stderr(), 'consumer').final).toEqual({ outcome: 'stopped', bytes: message.length, chunks: 1 });
  });

  it('--progress with status or remove-consumer is a usage error', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    for (const args of [['--progress', 'status'], ['--progress-interval', '2', 'status'], ['--progress', 'remove-consumer', 'x']]) {
      const result = await runFilebus(['--filename', bus, ...args], { stdin: 'ignore' });
      expect(result).toMatchObject({ code: 2, stderr: 'filebus: --progress applies only to producer and consumer\n' });
    }
    for (const value of ['0', 'abc', '-1']) {
      const result = await runFilebus(['--filename', bus, '--progress-interval', value, 'producer'], { input: 'x' });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(new RegExp(`^filebus: --progress-interval must .*'${value}'\\n$`));
    }
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

/**
 * Starts `command` (a shell command line) with a pseudo-terminal as its
 * stdin, stdout and stderr, through script(1); `screen()` is what the
 * terminal has shown so far.
 */
function startOnTerminal(command: string, cwd: string): { screen(): string; done: Promise<{ code: number | null; screen: string }> } {
  let screen = '';
  const proc = startProcess('script', ['-qfec', command, '/dev/null'], {
    cwd, env: { SHELL: '/bin/bash' }, stdout: (d) => { screen += d.toString('latin1'); },
  });
  // script(1) shows the terminal on its stdout; its own stderr says only what went wrong.
  const closed = proc.done.then(({ code }) => ({ code, screen: screen + proc.stderr() }));
  return { screen: () => screen, done: within(closed, 30_000, `script -c ${command}`) };
}

async function onTerminal(command: string, cwd: string): Promise<{ code: number | null; screen: string }> {
  return startOnTerminal(command, cwd).done;
}

/** Parses what a terminal received: reports each starting with \r and ending with erase-to-end-of-line. */
function parseScreen(screen: string, role: string): Reports {
  // The terminal turns the one final newline into \r\n; there is no other.
  expect(screen.endsWith('\x1b[K\r\n')).toBe(true);
  expect(screen.slice(0, -2)).not.toContain('\n');
  const reports = screen.slice(0, -2).split('\r').filter((r) => r !== '');
  for (const report of reports) expect(report.endsWith('\x1b[K'), JSON.stringify(report)).toBe(true);
  const lines = reports.map((r) => r.slice(0, -3));
  return parseLines(`${lines.join('\n')}\n`, role);
}

describe('--progress, stderr a terminal', () => {
  const node = JSON.stringify(process.execPath);
  const bin = JSON.stringify(BIN);

  it('producer: one line redrawn in place, a final line ending it; stdout untouched', async () => {
    const dir = tmp.dir;
    const parts = [randomData(200_000), randomData(300_000)];
    fs.writeFileSync(path.join(dir, 'a'), parts[0]!);
    fs.writeFileSync(path.join(dir, 'b'), parts[1]!);
    const command = `(cat a; sleep 1; cat b) | ${node} ${bin} --filename bus --progress --progress-interval 0.1 producer > stdout`;
    const { code, screen } = await onTerminal(command, dir);
    expect(code, screen).toBe(0);
    const reports = parseScreen(screen, 'producer');
    expect(reports.intervals.length).toBeGreaterThanOrEqual(3);
    expect(reports.final).toMatchObject({ outcome: 'done', bytes: 500_000 });
    expect(fs.readFileSync(path.join(dir, 'stdout')).length).toBe(0);
    // Lossy: FILE holds the last chunk, the end of the input.
    const last = fs.readFileSync(path.join(dir, 'bus'));
    expect(last.length).toBeGreaterThan(0);
    expect(last.equals(Buffer.concat(parts).subarray(500_000 - last.length))).toBe(true);
  });

  it('consumer: reports in place on the terminal, the data byte for byte on stdout', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const input = randomData(400_000);
    const command = `${node} ${bin} --filename bus --back-pressure --progress --progress-interval 0.1 consumer > stdout`;
    const terminal = startOnTerminal(command, dir);
    await until(() => terminal.screen().includes('filebus consumer: '), 'the consumer\'s first report', 15_000);
    // Half now, half a little later, so the consumer reports while waiting too.
    const producer = startFilebus(['--filename', bus, '--back-pressure', 'producer'], { stdin: 'pipe' });
    await feed(producer, [input.subarray(0, 200_000), input.subarray(200_000)], 800);
    expect(await within(producer.done, 30_000, 'producer')).toEqual({ code: 0, signal: null });
    const { code, screen } = await terminal.done;
    expect(code, screen).toBe(0);
    const reports = parseScreen(screen, 'consumer');
    expect(reports.intervals.length).toBeGreaterThanOrEqual(3);
    expect(reports.final).toMatchObject({ outcome: 'done', bytes: input.length });
    expect(fs.readFileSync(path.join(dir, 'stdout')).equals(input)).toBe(true);
  });
});
