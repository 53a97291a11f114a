/**
 * `--lock mkdir` on a local directory (no GlusterFS needed): every mode
 * round-trips, the bus is marked and refused to flock processes (and the
 * reverse), and a lock left by a SIGKILLed holder is taken over after the
 * documented stale timeout, while SIGTERM releases it at once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MKDIR_STALE_MS, MKDIR_UPDATE_MS } from '../../src/lock/mkdir-lock.js';
import { detectLockStrategy } from '../../src/lock/strategy.js';
import { busPaths } from '../../src/wire/layout.js';
import { randomData } from '../helpers/cli.js';
import { startFilebus, runFilebus, killAll } from '../helpers/procs.js';
import { within, until } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { listTree } from '../helpers/bus-layout.js';

const tmp = useBusDir('filebus-mkdir-lock-');

const MKDIR = ['--lock', 'mkdir'];

function inputFile(data: Buffer): string {
  const file = path.join(tmp.dir, 'input');
  fs.writeFileSync(file, data);
  return file;
}

describe('--lock mkdir round trips', () => {
  for (const mode of ['back-pressure', 'multicast'] as const) {
    it(`${mode}: two consumers, every byte delivered as the mode promises; FILE.lock never appears; the lock directory is gone afterwards`, async () => {
      const data = randomData(3 * 65536 + 123);
      const flags = ['--filename', tmp.bus, `--${mode}`, ...MKDIR];
      const consumers = [startFilebus([...flags, 'consumer'], { stdin: 'ignore' }), startFilebus([...flags, 'consumer'], { stdin: 'ignore' })];
      await until(() => fs.existsSync(`${tmp.bus}.lock-strategy`), 'the consumers to mark the bus', 15_000);
      const producer = await runFilebus([...flags, 'producer'], { stdin: { file: inputFile(data) }, timeoutMs: 30_000 });
      expect(producer.code, producer.stderr).toBe(0);
      if (mode === 'multicast') {
        for (const c of consumers) {
          expect((await within(c.done, 20_000, 'a multicast consumer')).code).toBe(0);
          expect(c.stdout().equals(data)).toBe(true);
        }
      } else {
        // Exactly one consumer takes the end marker; the other keeps waiting for a next stream.
        await until(() => consumers.some((c) => !c.running()), 'a consumer to take the end marker', 20_000);
        await new Promise((r) => setTimeout(r, 300));
        const finished = consumers.filter((c) => !c.running());
        expect(finished).toHaveLength(1);
        expect((await finished[0]!.done).code).toBe(0);
        expect(Buffer.concat(consumers.map((c) => c.stdout())).length).toBe(data.length);
        // Each consumer's share is in order; together they are the input once.
        const shares = consumers.map((c) => c.stdout());
        let a = 0;
        let b = 0;
        const merged: Buffer[] = [];
        while (a + b < data.length) {
          const next = data.subarray(a + b, a + b + 65536);
          if (shares[0]!.subarray(a, a + next.length).equals(next)) { merged.push(next); a += next.length; }
          else if (shares[1]!.subarray(b, b + next.length).equals(next)) { merged.push(next); b += next.length; }
          else break;
        }
        expect(Buffer.concat(merged).equals(data)).toBe(true);
      }
      expect(fs.readFileSync(`${tmp.bus}.lock-strategy`, 'utf8')).toBe('mkdir\n');
      expect(fs.existsSync(`${tmp.bus}.lock`)).toBe(false);
      await killAll();
      expect(fs.existsSync(`${tmp.bus}.lock.d`)).toBe(false);
      expect(detectLockStrategy(busPaths(tmp.bus))).toBe('mkdir');
    });
  }

  it('lossy: a consumer gets the chunks of a paced producer; FILE.lock never appears', async () => {
    const consumer = startFilebus(['--filename', tmp.bus, ...MKDIR, 'consumer'], { stdin: 'ignore' });
    const producer = startFilebus(['--filename', tmp.bus, ...MKDIR, 'producer'], { stdin: 'pipe' });
    const sent: string[] = [];
    for (let i = 0; i < 5; i++) {
      const line = `chunk ${i}\n`;
      sent.push(line);
      producer.child.stdin!.write(line);
      await until(() => consumer.stdout().toString().includes(line), `the consumer to emit ${JSON.stringify(line)}`, 15_000);
    }
    producer.child.stdin!.end();
    expect((await within(producer.done, 15_000, 'the producer')).code).toBe(0);
    expect(consumer.stdout().toString()).toBe(sent.join(''));
    expect(fs.existsSync(`${tmp.bus}.lock`)).toBe(false);
    expect(fs.existsSync(`${tmp.bus}.lock.d`)).toBe(false);
    expect(fs.readFileSync(`${tmp.bus}.lock-strategy`, 'utf8')).toBe('mkdir\n');
  });
});

describe('mixing lock strategies on one bus is refused: exit 2, one line, nothing touched', () => {
  async function expectRefused(args: string[], found: 'flock' | 'mkdir'): Promise<void> {
    const before = listTree(tmp.dir);
    const r = await runFilebus(args, { input: 'must not be published\n', timeoutMs: 20_000 });
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 2, signal: null });
    expect(r.stderr).toMatch(new RegExp(`^filebus: ${tmp.bus.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is locked with --lock ${found} [^\\n]*same lock[^\\n]*\\n$`));
    expect(r.stdout.length).toBe(0);
    expect(listTree(tmp.dir)).toEqual(before);
  }

  const roles: Array<[string, string[]]> = [
    ['producer', ['producer']],
    ['lossy consumer', ['consumer']],
    ['back-pressure producer', ['--back-pressure', 'producer']],
    ['back-pressure consumer', ['--back-pressure', 'consumer']],
    ['multicast consumer', ['--multicast', 'consumer']],
    ['remove-consumer', ['remove-consumer', 'someone']],
  ];

  for (const [role, args] of roles) {
    it(`a flock ${role} on a bus marked mkdir`, async () => {
      const made = await runFilebus(['--filename', tmp.bus, ...MKDIR, 'producer'], { input: 'first\n' });
      expect(made.code, made.stderr).toBe(0);
      await expectRefused(['--filename', tmp.bus, ...args], 'mkdir');
      // Explicit --lock flock too.
      await expectRefused(['--filename', tmp.bus, '--lock', 'flock', ...args], 'mkdir');
    });

    it(`a mkdir ${role} on a bus that has FILE.lock`, async () => {
      const made = await runFilebus(['--filename', tmp.bus, 'producer'], { input: 'first\n' });
      expect(made.code, made.stderr).toBe(0);
      expect(fs.existsSync(`${tmp.bus}.lock`)).toBe(true);
      await expectRefused(['--filename', tmp.bus, ...MKDIR, ...args], 'flock');
    });
  }

  it('a flock producer that starts first and creates FILE.lock late (on its first chunk) refuses a bus marked meanwhile', async () => {
    const early = startFilebus(['--filename', tmp.bus, 'producer'], { stdin: 'pipe' });
    await new Promise((r) => setTimeout(r, 1000));
    const made = await runFilebus(['--filename', tmp.bus, ...MKDIR, 'producer'], { input: 'from the mkdir producer\n' });
    expect(made.code, made.stderr).toBe(0);
    early.child.stdin!.end('from the flock producer\n');
    const exit = await within(early.done, 15_000, 'the flock producer');
    expect(exit.code).toBe(2);
    expect(early.stderr()).toMatch(/^filebus: [^\n]*locked with --lock mkdir[^\n]*\n$/);
    expect(fs.readFileSync(tmp.bus, 'utf8')).toBe('from the mkdir producer\n');
    expect(fs.existsSync(`${tmp.bus}.lock`)).toBe(false);
  });

  it('detectLockStrategy tells none, flock, mkdir and mixed apart', async () => {
    const paths = busPaths(tmp.bus);
    expect(detectLockStrategy(paths)).toBe('none');
    await runFilebus(['--filename', tmp.bus, 'producer'], { input: 'x' });
    expect(detectLockStrategy(paths)).toBe('flock');
    fs.writeFileSync(`${tmp.bus}.lock-strategy`, 'mkdir\n');
    expect(detectLockStrategy(paths)).toBe('mixed');
    for (const lock of ['flock', 'mkdir']) {
      const refused = await runFilebus(['--filename', tmp.bus, '--lock', lock, 'consumer'], { timeoutMs: 20_000 });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/^filebus: [^\n]* has both [^\n]*\n$/);
    }
    fs.rmSync(`${tmp.bus}.lock`);
    expect(detectLockStrategy(paths)).toBe('mkdir');
  });

  it('a marker holding anything but mkdir is a bad path (exit 2)', async () => {
    fs.writeFileSync(`${tmp.bus}.lock-strategy`, 'flock\n');
    const r = await runFilebus(['--filename', tmp.bus, ...MKDIR, 'producer'], { input: 'x' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^filebus: [^\n]*lock-strategy is not a lock strategy marker[^\n]*\n$/);
  });
});

describe('a held mkdir lock', () => {
  /** A back-pressure consumer holding the lock: it took a 1 MiB chunk and blocks writing it to a pipe nobody reads. */
  async function holder(): Promise<{ chunk: Buffer; proc: ReturnType<typeof startFilebus> }> {
    const chunk = randomData(1024 * 1024);
    // The producer publishes the chunk, then waits for it to be taken before its end marker.
    startFilebus(['--filename', tmp.bus, '--back-pressure', '--block-size', String(chunk.length), ...MKDIR, 'producer'], { stdin: { file: inputFile(chunk) } });
    await until(() => fs.existsSync(tmp.bus), 'the chunk', 15_000);
    const proc = startFilebus(['--filename', tmp.bus, '--back-pressure', ...MKDIR, 'consumer'], { stdin: 'ignore', stdout: 'unread' });
    await until(() => fs.existsSync(`${tmp.bus}.lock.d`), 'the consumer to take the lock', 15_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(proc.running()).toBe(true);
    expect(fs.existsSync(`${tmp.bus}.lock.d`)).toBe(true);
    return { chunk, proc };
  }

  it(`left by a consumer killed with SIGKILL is taken over once stale (${MKDIR_STALE_MS / 1000} s without refresh), and the chunk it held is delivered again`, async () => {
    const { chunk, proc } = await holder();
    const taker = startFilebus(['--filename', tmp.bus, '--back-pressure', ...MKDIR, 'consumer'], { stdin: 'ignore' });
    await new Promise((r) => setTimeout(r, 500));
    const killedAt = Date.now();
    process.kill(-proc.pid, 'SIGKILL');
    await until(() => taker.stdoutBytes() >= chunk.length, 'the second consumer to deliver the chunk', MKDIR_STALE_MS + 15_000);
    const recovery = Date.now() - killedAt;
    expect(recovery).toBeGreaterThan(MKDIR_STALE_MS - MKDIR_UPDATE_MS - 1_000);
    expect(recovery).toBeLessThan(MKDIR_STALE_MS + 5_000);
    expect(taker.stdout().subarray(0, chunk.length).equals(chunk)).toBe(true);
    expect(fs.existsSync(`${tmp.bus}.lock.d.stale`)).toBe(false);
  }, MKDIR_STALE_MS + 40_000);

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`is released at once when its holder gets ${signal}`, async () => {
      const { chunk, proc } = await holder();
      process.kill(proc.pid, signal);
      await within(proc.done, 5_000, `the consumer to die of ${signal}`);
      expect(fs.existsSync(`${tmp.bus}.lock.d`)).toBe(false);
      const taker = startFilebus(['--filename', tmp.bus, '--back-pressure', ...MKDIR, 'consumer'], { stdin: 'ignore' });
      await until(() => taker.stdoutBytes() >= chunk.length, 'another consumer to deliver the chunk', 5_000);
      expect(taker.stdout().subarray(0, chunk.length).equals(chunk)).toBe(true);
    });
  }
});

describe('multicast liveness on a mkdir bus (mtime heartbeats, not flock)', () => {
  it(`a named consumer killed with SIGKILL counts as running until its cursor goes stale (${MKDIR_STALE_MS / 1000} s): the producer waits for it that long, a restart under its name is refused until then, then resumes from its cursor`, async () => {
    const block = 4096;
    // Far more than the pipe to the paused consumer holds, so it stops reading for good.
    const data = randomData(200 * block);
    const flags = ['--filename', tmp.bus, '--multicast', ...MKDIR, '--block-size', String(block)];
    const cursor = path.join(`${tmp.bus}.consumers`, 'n.cursor');
    const first = startFilebus([...flags, '--name', 'n', 'consumer'], { stdin: 'ignore', stdout: 'unread' });
    await until(() => fs.existsSync(cursor) && fs.statSync(cursor).size === 30, 'the consumer to register', 15_000);
    // No flock: the cursor's liveness is its mtime, refreshed while the consumer runs.
    const producer = startFilebus([...flags, '--window', '4', 'producer'], { stdin: { file: inputFile(data) } });
    // The consumer stops reading (its stdout is a pipe nobody reads); the producer stops at the window.
    const newest = (): number => Math.max(0, ...fs.readdirSync(`${tmp.bus}.segments`).map((n) => Number(n.slice(0, 20))));
    await until(() => newest() >= 20, 'twenty segments', 15_000);
    for (let last = -1; newest() !== last;) {
      last = newest();
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(newest()).toBeLessThan(200);
    expect(producer.running()).toBe(true);
    process.kill(-first.pid, 'SIGKILL');
    const killedAt = Date.now();

    const refused = await runFilebus([...flags, '--name', 'n', 'consumer'], { timeoutMs: 10_000 });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^filebus: consumer n is already running[^\n]*\n$/);
    expect(Date.now() - killedAt).toBeLessThan(MKDIR_STALE_MS - MKDIR_UPDATE_MS);

    // The dead consumer stops holding the producer back once its cursor is stale.
    expect((await within(producer.done, MKDIR_STALE_MS + 15_000, 'the producer')).code, producer.stderr()).toBe(0);
    expect(Date.now() - killedAt).toBeGreaterThan(MKDIR_STALE_MS - MKDIR_UPDATE_MS - 1_000);

    const position = Number(fs.readFileSync(cursor, 'latin1').slice(0, 20));
    const resumed = await runFilebus([...flags, '--name', 'n', 'consumer'], { timeoutMs: 20_000 });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout.equals(data.subarray((position - 1) * block))).toBe(true);
  }, MKDIR_STALE_MS + 40_000);
});
