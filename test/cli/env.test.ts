/**
 * FILEBUS_* environment variables as defaults for the common flags: real
 * producers and consumers configured only through the environment, flags
 * winning over variables, bad values refused with the variable's name, and
 * unrelated FILEBUS_* variables left alone.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomData } from '../helpers/cli.js';
import { runFilebus } from '../helpers/procs.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { segments, listTree } from '../helpers/bus-layout.js';

const tmp = useBusDir('filebus-env-');

/** Sizes of the segments on a multicast bus, end marker included. */
function segmentSizes(bus: string): number[] {
  return segments(bus).map((s) => fs.statSync(s.path).size);
}

const ALL_VARIABLES = [
  'FILEBUS_FILENAME', 'FILEBUS_BACK_PRESSURE', 'FILEBUS_MULTICAST', 'FILEBUS_WINDOW', 'FILEBUS_RETAIN', 'FILEBUS_BLOCK_SIZE',
  'FILEBUS_SLEEP_INTERVAL', 'FILEBUS_FILE_MONITORING', 'FILEBUS_FILE_MODE', 'FILEBUS_PROGRESS', 'FILEBUS_PROGRESS_INTERVAL',
];

describe('configuration from the environment', () => {
  it('a multicast producer and consumer set up by variables alone', async () => {
    const { bus } = tmp;
    const input = randomData(5000);
    const env = { FILEBUS_FILENAME: bus, FILEBUS_MULTICAST: '1', FILEBUS_RETAIN: 'all', FILEBUS_BLOCK_SIZE: '1000', FILEBUS_FILE_MODE: '0640' };
    const produced = await runFilebus(['producer'], { input, env });
    expect(produced).toMatchObject({ code: 0, stderr: '' });
    // 1000-byte chunks and the end marker, all retained, each with the mode asked for.
    expect(segmentSizes(bus)).toEqual([1000, 1000, 1000, 1000, 1000, 0]);
    for (const segment of segments(bus)) expect(fs.statSync(segment.path).mode & 0o777).toBe(0o640);
    const consumed = await runFilebus(['--from', 'earliest', 'consumer'], { stdin: 'ignore', env });
    expect(consumed).toMatchObject({ code: 0, stderr: '' });
    expect(consumed.stdout.equals(input)).toBe(true);
    const status = await runFilebus(['status', '--json'], { stdin: 'ignore', env: { FILEBUS_FILENAME: bus } });
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout.toString())).toMatchObject({ filename: bus, mode: 'multicast', retained: { chunks: 6, bytes: 5000 } });
  });

  it('a back-pressure pair from FILEBUS_BACK_PRESSURE, with progress from FILEBUS_PROGRESS', async () => {
    const { dir, bus } = tmp;
    const input = randomData(200_000);
    const env = { FILEBUS_FILENAME: bus, FILEBUS_BACK_PRESSURE: 'yes', FILEBUS_PROGRESS: 'true', FILEBUS_SLEEP_INTERVAL: '0.05' };
    const [produced, consumed] = await Promise.all([
      runFilebus(['producer'], { input, env }),
      runFilebus(['consumer'], { stdin: 'ignore', env }),
    ]);
    expect(produced.code).toBe(0);
    expect(consumed.code).toBe(0);
    expect(consumed.stdout.equals(input)).toBe(true);
    expect(consumed.stderr).toMatch(new RegExp(`^filebus consumer: done: .* \\(${input.length} bytes\\)`, 'm'));
    expect(produced.stderr).toMatch(new RegExp(`^filebus producer: done: .* \\(${input.length} bytes\\)`, 'm'));
    // Back-pressure leaves only the lock: no segments, so not multicast.
    expect(listTree(dir)).toEqual(['bus.lock']);
  });

  it('flags on the command line win over variables', async () => {
    const { dir, bus } = tmp;
    const elsewhere = path.join(dir, 'elsewhere');
    const input = randomData(5000);
    const env = { FILEBUS_FILENAME: elsewhere, FILEBUS_MULTICAST: '1', FILEBUS_RETAIN: 'window', FILEBUS_BLOCK_SIZE: '1000' };
    const produced = await runFilebus(['--filename', bus, '--retain', 'all', '--block-size', '2500', 'producer'], { input, env });
    expect(produced).toMatchObject({ code: 0, stderr: '' });
    expect(segmentSizes(bus)).toEqual([2500, 2500, 0]);
    expect(fs.existsSync(`${elsewhere}.lock`)).toBe(false);
    // A mode flag on the command line decides the mode alone.
    const other = path.join(dir, 'other');
    const [produced2, consumed] = await Promise.all([
      runFilebus(['--filename', other, '--back-pressure', 'producer'], { input: 'x', env: { FILEBUS_MULTICAST: '1' } }),
      runFilebus(['--filename', other, '--back-pressure', 'consumer'], { stdin: 'ignore', env: { FILEBUS_MULTICAST: 'true' } }),
    ]);
    expect(produced2.code).toBe(0);
    expect(consumed).toMatchObject({ code: 0, stderr: '' });
    expect(consumed.stdout.toString()).toBe('x');
    expect(fs.existsSync(`${other}.segments`)).toBe(false);
    // --no-X beats FILEBUS_X=1, and a flag makes a bad variable for it harmless.
    const quiet = await runFilebus(['--filename', bus, '--no-progress', '--block-size', '100', '--multicast', 'producer'], {
      input: 'y', env: { FILEBUS_PROGRESS: '1', FILEBUS_BLOCK_SIZE: 'not a number' },
    });
    expect(quiet).toMatchObject({ code: 0, stderr: '' });
  });

  it('variables that do not apply are ignored: multicast ones on a lossy bus, transfer ones for status', async () => {
    const { dir, bus } = tmp;
    const env = { FILEBUS_WINDOW: 'lots', FILEBUS_RETAIN: 'all', FILEBUS_BLOCK_SIZE: '3' };
    const produced = await runFilebus(['--filename', bus, 'producer'], { input: 'abcdefg', env });
    expect(produced).toMatchObject({ code: 0, stderr: '' });
    expect(fs.readFileSync(bus, 'utf8')).toBe('g');
    expect(listTree(dir)).toEqual(['bus', 'bus.lock']);
    const status = await runFilebus(['--filename', bus, 'status'], { stdin: 'ignore', env: { FILEBUS_BLOCK_SIZE: 'abc', FILEBUS_MULTICAST: 'maybe' } });
    expect(status).toMatchObject({ code: 0, stderr: '' });
  });

  it('unrelated FILEBUS_* variables change nothing; an empty variable counts as unset', async () => {
    const { bus } = tmp;
    const input = randomData(3000);
    const env = { FILEBUS_REFERENCE: '/nonexistent/filebus', FILEBUS_MODE: 'multicast', FILEBUS_FOO: 'bar', FILEBUS_BLOCK_SIZE: '', FILEBUS_MULTICAST: '' };
    const produced = await runFilebus(['--filename', bus, 'producer'], { input, env });
    expect(produced).toMatchObject({ code: 0, stderr: '' });
    // Lossy (FILEBUS_MODE is not ours) with the default block size: one chunk, FILE holds it all.
    expect(fs.readFileSync(bus).equals(input)).toBe(true);
    expect(fs.existsSync(`${bus}.segments`)).toBe(false);
  });

  describe('a bad value: exit 2, one line naming the variable, nothing created', () => {
    const cases: Array<[env: Record<string, string>, args: string[], message: string]> = [
      [{ FILEBUS_BLOCK_SIZE: 'abc' }, ['producer'], "FILEBUS_BLOCK_SIZE must be a positive integer, got 'abc'"],
      [{ FILEBUS_BLOCK_SIZE: '0' }, ['consumer'], "FILEBUS_BLOCK_SIZE must be a positive integer, got '0'"],
      [{ FILEBUS_SLEEP_INTERVAL: '-1' }, ['consumer'], "FILEBUS_SLEEP_INTERVAL must not be negative, got '-1'"],
      [{ FILEBUS_SLEEP_INTERVAL: 'soon' }, ['producer'], "FILEBUS_SLEEP_INTERVAL must be a number of seconds, got 'soon'"],
      [{ FILEBUS_FILE_MODE: '999' }, ['producer'], "FILEBUS_FILE_MODE must be octal permission bits such as 0600 or 644, got '999'"],
      [{ FILEBUS_MULTICAST: 'maybe' }, ['producer'], "FILEBUS_MULTICAST must be 1, true, yes, on, 0, false, no or off, got 'maybe'"],
      [{ FILEBUS_FILE_MONITORING: '2' }, ['consumer'], "FILEBUS_FILE_MONITORING must be 1, true, yes, on, 0, false, no or off, got '2'"],
      [{ FILEBUS_PROGRESS: 'loud' }, ['producer'], "FILEBUS_PROGRESS must be 1, true, yes, on, 0, false, no or off, got 'loud'"],
      [{ FILEBUS_PROGRESS_INTERVAL: '0' }, ['producer'], "FILEBUS_PROGRESS_INTERVAL must be at least 0.001 seconds, got '0'"],
      [{ FILEBUS_MULTICAST: '1', FILEBUS_WINDOW: 'lots' }, ['producer'],
        "FILEBUS_WINDOW must be a positive number of chunks (e.g. 256) or a size in bytes (e.g. 64MiB), got 'lots'"],
      [{ FILEBUS_MULTICAST: '1', FILEBUS_RETAIN: 'forever' }, ['consumer'], "FILEBUS_RETAIN must be window or all, got 'forever'"],
      [{ FILEBUS_MULTICAST: '1', FILEBUS_BACK_PRESSURE: '1' }, ['producer'], 'FILEBUS_MULTICAST and FILEBUS_BACK_PRESSURE select different modes; set one'],
    ];
    for (const [env, args, message] of cases) {
      it(`${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')} ${args.join(' ')}`, async () => {
        const { dir, bus } = tmp;
        const result = await runFilebus(['--filename', bus, ...args], { input: 'data that must not go anywhere\n', env });
        expect(result).toMatchObject({ code: 2, signal: null, stderr: `filebus: ${message}\n` });
        expect(result.stdout.length).toBe(0);
        expect(listTree(dir)).toEqual([]);
      });
    }

    it('FILEBUS_FILENAME pointing at a directory is a bad path, like --filename', async () => {
      const { dir } = tmp;
      const result = await runFilebus(['consumer'], { stdin: 'ignore', env: { FILEBUS_FILENAME: dir } });
      expect(result).toMatchObject({ code: 2, stderr: `filebus: ${dir} is a directory, not a bus file\n` });
    });
  });

  it('--help lists every variable and the exit codes', async () => {
    const help = await runFilebus(['--help'], { stdin: 'ignore' });
    expect(help.code).toBe(0);
    const text = help.stdout.toString().replace(/\s+/g, ' ');
    for (const variable of ALL_VARIABLES) expect(text).toContain(variable);
    expect(text).toContain('A flag on the command line wins');
    expect(text).toMatch(/3 when status finds no bus at FILE/);
    expect(text).toMatch(/2 for a bad command line, path or FILEBUS_\* variable/);
  });
});
