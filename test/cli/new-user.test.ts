/**
 * A new user's mistakes lose nothing and misroute nothing: a file that is
 * no bus is refused rather than replaced or deleted, a misspelled
 * directory is not created, and a consumer in the wrong mode says so
 * instead of waiting for ever.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Consumer, FilebusError } from '../../src/index.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { listTree } from '../helpers/bus-layout.js';
import { runFilebus, startFilebus, type Proc } from '../helpers/procs.js';
import { within } from '../helpers/wait.js';

const tmp = useBusDir('filebus-cli-new-user-');

/** `filebus ...args` with `input` on stdin (or none), killed after `timeoutMs` if still running. */
function runCli(args: readonly string[], input?: string, timeoutMs = 30_000): ReturnType<typeof runFilebus> {
  return runFilebus(args, { ...(input !== undefined && { input }), timeoutMs, onTimeout: 'report' });
}

const PRECIOUS = 'notes I have not saved anywhere else\n';

describe('a file that is not a bus', () => {
  for (const [label, args, input] of [
    ['a back-pressure consumer', ['--back-pressure', 'consumer'], undefined],
    ['a lossy producer', ['producer'], 'new data\n'],
    ['a back-pressure producer', ['--back-pressure', 'producer'], 'new data\n'],
    ['a multicast producer', ['--multicast', 'producer'], 'new data\n'],
  ] as const) {
    it(`${label} refuses it with one line and exit 2, and leaves it as it was`, async () => {
      const file = path.join(tmp.dir, 'notes.txt');
      fs.writeFileSync(file, PRECIOUS);
      const run = await runCli(['--filename', file, ...args], input);
      expect(run.code).toBe(2);
      expect(run.stderr).toBe(`filebus: ${file} exists but is not a bus (no notes.txt.lock, no registration, no segments), and would be ${(args as readonly string[]).includes('consumer') ? 'deleted' : 'replaced'}: pass --take-over (library: takeOver: true) to use it anyway\n`);
      expect(run.stdout.length).toBe(0);
      expect(fs.readFileSync(file, 'utf8')).toBe(PRECIOUS);
      expect(listTree(tmp.dir)).toEqual(['notes.txt']);
    });
  }

  it('with --take-over a back-pressure consumer delivers it, and a producer replaces it', async () => {
    const file = path.join(tmp.dir, 'notes.txt');
    fs.writeFileSync(file, PRECIOUS);
    const consumer = await runCli(['--filename', file, '--back-pressure', '--take-over', 'consumer'], undefined, 5_000);
    // The file was the first chunk; no end marker follows, so the consumer waits until killed.
    expect(consumer.signal).toBe('SIGKILL');
    expect(consumer.stdout.toString()).toBe(PRECIOUS);
    expect(fs.existsSync(file)).toBe(false);
    fs.writeFileSync(file, PRECIOUS);
    const producer = await runCli(['--filename', file, '--take-over', 'producer'], 'new data\n');
    expect(producer.code).toBe(0);
    expect(fs.readFileSync(file, 'utf8')).toBe('new data\n');
  });

  it('a lossy consumer, which only reads, prints it as the reference does', async () => {
    const file = path.join(tmp.dir, 'notes.txt');
    fs.writeFileSync(file, PRECIOUS);
    const consumer = await runCli(['--filename', file, 'consumer'], undefined, 3_000);
    expect(consumer.stdout.toString()).toBe(PRECIOUS);
    expect(fs.readFileSync(file, 'utf8')).toBe(PRECIOUS);
  });
});

describe('a directory that does not exist', () => {
  for (const mode of [[], ['--back-pressure'], ['--multicast']]) {
    it(`a consumer${mode.length ? ` (${mode[0]})` : ''} refuses it with one line and exit 2, and creates nothing`, async () => {
      const missing = path.join(tmp.dir, 'typo', 'deeper');
      const run = await runCli(['--filename', path.join(missing, 'bus'), ...mode, 'consumer'], undefined, 10_000);
      expect(run.code).toBe(2);
      expect(run.stderr).toBe(`filebus: directory ${missing} does not exist (a consumer creates none: check the path, or start the producer first)\n`);
      expect(listTree(tmp.dir)).toEqual([]);
    });
  }

  it('a producer creates it, as before', async () => {
    const run = await runCli(['--filename', path.join(tmp.dir, 'new', 'bus'), 'producer'], 'x\n');
    expect(run.code).toBe(0);
    expect(fs.readFileSync(path.join(tmp.dir, 'new', 'bus'), 'utf8')).toBe('x\n');
  });
});

describe('a consumer in the wrong mode', () => {
  /** A producer that stays on the bus until its stdin is closed. */
  async function liveProducer(mode: readonly string[]): Promise<Proc> {
    const producer = startFilebus(['--filename', tmp.bus, ...mode, 'producer'], { stdin: 'pipe' });
    producer.child.stdin!.write('first\n');
    const registrations = `${tmp.bus}.producers`;
    const deadline = Date.now() + 10_000;
    // Registered, and its first chunk published.
    while (!(fs.existsSync(tmp.bus) && fs.existsSync(registrations) && fs.readdirSync(registrations).some((n) => n.endsWith('.producer')))) {
      if (Date.now() > deadline) throw new Error('the producer did not register');
      await new Promise((r) => setTimeout(r, 20));
    }
    return producer;
  }

  it('a multicast consumer on a live lossy bus refuses with one line, exit 2, and makes no multicast directory', async () => {
    const producer = await liveProducer([]);
    const consumer = await runCli(['--filename', tmp.bus, '--multicast', 'consumer'], undefined, 10_000);
    expect(consumer.code).toBe(2);
    expect(consumer.stderr).toMatch(new RegExp(`^filebus: ${tmp.bus} is a lossy bus \\(producer ${producer.pid} on [^)]+\\), not multicast: start the consumer with no mode flag\\n$`));
    expect(fs.existsSync(`${tmp.bus}.segments`)).toBe(false);
    expect(fs.existsSync(`${tmp.bus}.consumers`)).toBe(false);
  });

  it('a back-pressure consumer on a live multicast bus refuses, and takes nothing', async () => {
    await liveProducer(['--multicast']);
    const before = listTree(tmp.dir);
    const consumer = await runCli(['--filename', tmp.bus, '--back-pressure', 'consumer'], undefined, 10_000);
    expect(consumer.code).toBe(2);
    expect(consumer.stderr).toMatch(/is a multicast bus \(producer \d+ on [^)]+\), not back-pressure: start the consumer with --multicast\n$/);
    expect(consumer.stdout.length).toBe(0);
    expect(listTree(tmp.dir)).toEqual(before);
  });

  it('a multicast consumer started first stops within seconds when a lossy producer starts, and leaves no multicast directory', async () => {
    const consumer = startFilebus(['--filename', tmp.bus, '--multicast', 'consumer'], { stdin: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!fs.existsSync(`${tmp.bus}.consumers`)) {
      if (Date.now() > deadline) throw new Error('the consumer did not join');
      await new Promise((r) => setTimeout(r, 20));
    }
    const producer = await liveProducer([]);
    const started = Date.now();
    expect(await within(consumer.done, 10_000, 'the consumer to notice the lossy producer')).toEqual({ code: 2, signal: null });
    // Checked once a second: on a loaded machine, a little more.
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(consumer.stderr()).toMatch(new RegExp(`is a lossy bus \\(producer ${producer.pid} on [^)]+\\), not multicast`));
    expect(fs.existsSync(`${tmp.bus}.segments`)).toBe(false);
    expect(fs.existsSync(`${tmp.bus}.consumers`)).toBe(false);
  });

  it('the library: a multicast Consumer on a live lossy bus rejects with ERR_FILEBUS_MODE', async () => {
    await liveProducer([]);
    const consumer = new Consumer({ filename: tmp.bus, mode: 'multicast' });
    let caught: unknown;
    try {
      for await (const chunk of consumer) expect(chunk).toBeUndefined();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(FilebusError);
    expect((caught as FilebusError).code).toBe('ERR_FILEBUS_MODE');
  });
});

describe('a --sleep-interval longer than a timer can hold', () => {
  it('a consumer waits quietly (every wait still ends and looks again), and delivers what comes', async () => {
    const consumer = startFilebus(['--filename', tmp.bus, '--back-pressure', '--sleep-interval', '99999999999999999999', 'consumer']);
    await new Promise((r) => setTimeout(r, 1500));
    expect(consumer.running()).toBe(true);
    expect(consumer.stderr()).toBe('');
    const producer = await runCli(['--filename', tmp.bus, '--back-pressure', 'producer'], 'late\n');
    expect(producer.code).toBe(0);
    expect(await within(consumer.done, 10_000, 'the consumer to take the end marker')).toEqual({ code: 0, signal: null });
    expect(consumer.stdout().toString()).toBe('late\n');
    expect(consumer.stderr()).toBe('');
  });
});
