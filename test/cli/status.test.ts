/**
 * `filebus status`: real buses in every mode, made by real filebus
 * processes; the report is checked against what the test put on the bus,
 * and the bus is checked to be exactly as it was before status looked.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { flockSync } from 'fs-ext';
import { describe, expect, it } from 'vitest';
import { busStatus, type BusStatus } from '../../src/index.js';
import { startFilebus, runFilebus, type Proc } from '../helpers/procs.js';
import { within, until } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { segments, cursorPath, readCursor, listTree } from '../helpers/bus-layout.js';

const tmp = useBusDir('filebus-status-');

/** Everything under `dir` that status could change: names, kinds, sizes, modes, mtimes and contents. */
function snapshot(dir: string): string[] {
  return listTree(dir).map((name) => {
    const full = path.join(dir, name.replace(/\/$/, '').replace(/ -> .*$/, ''));
    const st = fs.lstatSync(full);
    const content = st.isFile() ? createHash('sha256').update(fs.readFileSync(full)).digest('hex') : '';
    return `${name} ${st.size} ${st.mode.toString(8)} ${st.mtimeMs} ${st.ino} ${content}`;
  });
}

async function status(bus: string, ...extra: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const result = await runFilebus(['--filename', bus, 'status', ...extra], { stdin: 'ignore' });
  return { code: result.code, stdout: result.stdout.toString(), stderr: result.stderr };
}

async function statusJson(bus: string): Promise<BusStatus> {
  const result = await status(bus, '--json');
  expect(result, result.stderr).toMatchObject({ code: 0, stderr: '' });
  return JSON.parse(result.stdout) as BusStatus;
}

/** Polls `status --json` until `check` accepts it; producers rewrite their record about once a second. */
async function statusWhen(bus: string, check: (s: BusStatus) => boolean, what: string): Promise<BusStatus> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const s = await statusJson(bus);
    if (check(s)) return s;
    if (Date.now() > deadline) throw new Error(`status never showed ${what}; last: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Writes one message to a running producer and waits until `published` says it is on the bus. */
async function send(producer: Proc, message: Buffer, published: () => boolean): Promise<void> {
  producer.child.stdin!.write(message);
  await until(published, `message of ${message.length} bytes published`, 15_000);
}

describe('status of a bus that does not exist', () => {
  it('exits 3 with one line naming the path, prints nothing on stdout and creates nothing', async () => {
    const { dir, bus } = tmp;
    for (const extra of [[], ['--json']]) {
      const result = await status(bus, ...extra);
      expect(result.code).toBe(3);
      expect(result.stdout).toBe('');
      expect(result.stderr).toBe(`filebus: no bus at ${bus}\n`);
    }
    expect(listTree(dir)).toEqual([]);
    // A missing directory is no bus either, and is not created.
    const deeper = path.join(dir, 'not', 'there', 'bus');
    const result = await status(deeper);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/^filebus: no bus at .*not\/there\/bus: .* does not exist\n$/);
    expect(listTree(dir)).toEqual([]);
    await expect(busStatus(bus)).rejects.toMatchObject({ name: 'FilebusError', code: 'ERR_FILEBUS_NOT_FOUND', path: bus });
  });

  it('a directory at FILE is a bad path: exit 2, like the other commands', async () => {
    const { bus } = tmp;
    fs.mkdirSync(bus);
    const result = await status(bus);
    expect(result).toEqual({ code: 2, stdout: '', stderr: `filebus: ${bus} is a directory, not a bus file\n` });
  });
});

describe('lossy bus', () => {
  it('with a live filebus producer: mode, producer, newest chunk number, size and age; nothing changed by looking', async () => {
    const { dir, bus } = tmp;
    const producer = startFilebus(['--filename', bus, 'producer'], { stdin: 'pipe' });
    const messages = ['first message\n', 'second, longer message\n', 'third\n'].map((m) => Buffer.from(m));
    for (const message of messages) {
      await send(producer, message, () => fs.existsSync(bus) && fs.readFileSync(bus).equals(message));
    }
    const total = messages.reduce((sum, m) => sum + m.length, 0);
    const s = await statusWhen(bus, (x) => x.producers[0]?.chunks === 3, 'the producer record at 3 chunks');
    expect(s).toMatchObject({
      version: 1,
      filename: bus,
      mode: 'lossy',
      lock: { strategy: 'flock', held: false },
      producerLive: true,
      newestChunk: { number: 3, bytes: messages[2]!.length, endOfStream: false },
      retained: { chunks: 1, bytes: messages[2]!.length, oldest: null, newest: null },
      consumers: [],
    });
    expect(s.producers).toHaveLength(1);
    expect(s.producers[0]).toMatchObject({ pid: producer.pid, alive: true, mode: 'lossy', chunks: 3, bytes: total });
    expect(s.newestChunk!.ageSeconds).toBeGreaterThanOrEqual(0);
    expect(s.newestChunk!.ageSeconds).toBeLessThan(60);
    expect(Date.parse(s.newestChunk!.at!)).toBe(Math.floor(fs.statSync(bus).mtimeMs));

    // Looking changes nothing: not the files, not their times, not the producer's registration.
    const before = snapshot(dir);
    const text = await status(bus);
    expect(text.code).toBe(0);
    expect(text.stderr).toBe('');
    expect(text.stdout).toMatch(/^bus: +.*\/bus$/m);
    expect(text.stdout).toMatch(/^mode: +lossy$/m);
    expect(text.stdout).toMatch(/^lock: +flock, free$/m);
    expect(text.stdout).toMatch(/^producer: +live$/m);
    expect(text.stdout).toContain(`pid ${producer.pid} on `);
    expect(text.stdout).toMatch(new RegExp(`^newest: +chunk 3, ${messages[2]!.length} B, [0-9.]+ s ago$`, 'm'));
    expect(snapshot(dir)).toEqual(before);

    // The producer ends: its registration goes, and the bus looks as a reference bus does.
    producer.child.stdin!.end();
    expect(await within(producer.done, 15_000, 'producer')).toEqual({ code: 0, signal: null });
    expect(listTree(dir)).toEqual(['bus', 'bus.lock']);
    const after = await statusJson(bus);
    expect(after).toMatchObject({
      mode: 'lossy or back-pressure',
      producerLive: null,
      producers: [],
      newestChunk: { number: null, bytes: messages[2]!.length },
      retained: { chunks: 1, bytes: messages[2]!.length },
    });
  });

  it('a bus as a reference producer leaves it (FILE and FILE.lock, no registration): mode and producer reported as unknown', async () => {
    const { dir, bus } = tmp;
    fs.writeFileSync(`${bus}.lock`, '');
    fs.writeFileSync(bus, 'a chunk from elsewhere\n');
    const s = await statusJson(bus);
    expect(s).toMatchObject({ mode: 'lossy or back-pressure', producerLive: null, producers: [], lock: { strategy: 'flock', held: false } });
    expect(listTree(dir)).toEqual(['bus', 'bus.lock']);
  });

  it('does not wait for a held lock: reports it held, at once', async () => {
    const { bus } = tmp;
    fs.writeFileSync(bus, 'x');
    const fd = fs.openSync(`${bus}.lock`, 'w');
    try {
      flockSync(fd, 'ex');
      const started = Date.now();
      const s = await statusJson(bus);
      expect(s.lock).toEqual({ strategy: 'flock', held: true });
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      fs.closeSync(fd);
    }
    expect((await statusJson(bus)).lock).toEqual({ strategy: 'flock', held: false });
  });
});

describe('back-pressure bus', () => {
  it('with a producer waiting for a consumer: one chunk waiting, the producer counts the one it published', async () => {
    const { dir, bus } = tmp;
    const producer = startFilebus(['--filename', bus, '--back-pressure', 'producer'], { stdin: 'pipe' });
    const first = Buffer.from('waiting to be taken\n');
    await send(producer, first, () => fs.existsSync(bus) && fs.statSync(bus).size === first.length);
    // The second chunk cannot go out until a consumer takes the first.
    producer.child.stdin!.write('second chunk, held back by the first\n');
    const s = await statusWhen(bus, (x) => x.producers[0]?.chunks === 1, 'the producer record at 1 chunk');
    expect(s).toMatchObject({
      mode: 'back-pressure',
      producerLive: true,
      newestChunk: { number: 1, bytes: first.length, endOfStream: false },
      retained: { chunks: 1, bytes: first.length },
      consumers: [],
    });
    expect(s.producers[0]).toMatchObject({ pid: producer.pid, alive: true, mode: 'back-pressure', bytes: first.length });

    // A consumer drains the stream; the end marker is taken with it, and nothing of the registry is left.
    producer.child.stdin!.end();
    const consumer = await runFilebus(['--filename', bus, '--back-pressure', 'consumer'], { stdin: 'ignore' });
    expect(consumer.code).toBe(0);
    expect(consumer.stdout.toString()).toBe('waiting to be taken\nsecond chunk, held back by the first\n');
    expect(await within(producer.done, 15_000, 'producer')).toEqual({ code: 0, signal: null });
    expect(listTree(dir)).toEqual(['bus.lock']);
    expect(await statusJson(bus)).toMatchObject({ mode: 'lossy or back-pressure', producerLive: null, newestChunk: null, retained: { chunks: 0, bytes: 0 } });
  });

  it('a producer killed with SIGKILL shows as registered but dead', async () => {
    const { bus } = tmp;
    const producer = startFilebus(['--filename', bus, '--back-pressure', 'producer'], { stdin: 'pipe' });
    await send(producer, Buffer.from('one\n'), () => fs.existsSync(bus));
    await statusWhen(bus, (x) => x.producers[0]?.chunks === 1, 'the producer record at 1 chunk');
    process.kill(producer.pid, 'SIGKILL');
    await producer.done;
    const s = await statusJson(bus);
    expect(s).toMatchObject({ mode: 'back-pressure', producerLive: null });
    expect(s.producers).toEqual([expect.objectContaining({ pid: producer.pid, alive: false, mode: 'back-pressure', chunks: 1, bytes: 4 })]);
  });
});

describe('multicast bus', () => {
  it('a named consumer SIGKILLed: alive false, its position and lag in chunks and bytes; a live anonymous one: no lag', async () => {
    const { dir, bus } = tmp;
    const common = ['--filename', bus, '--multicast', '--retain', 'all'];
    const producer = startFilebus([...common, 'producer'], { stdin: 'pipe' });
    const sizes = [100, 2000, 30, 4000, 555];
    const payloads = sizes.map((size, i) => Buffer.alloc(size, 65 + i));
    for (const [i, payload] of payloads.slice(0, 3).entries()) {
      await send(producer, payload, () => segments(bus).length === i + 1);
    }
    // alice reads the three chunks, records position 4, and is killed.
    const alice = startFilebus([...common, '--name', 'alice', '--from', 'earliest', 'consumer'], { stdin: 'ignore' });
    await until(() => readCursorQuietly(cursorPath(bus, 'alice')) === 4, 'alice at position 4', 15_000);
    // The cursor moves once the bytes are written to the pipe; this process reads them a moment later.
    const delivered = Buffer.concat(payloads.slice(0, 3));
    await until(() => alice.stdout().length >= delivered.length, 'alice\'s output to arrive', 15_000);
    expect(alice.stdout().equals(delivered)).toBe(true);
    process.kill(alice.pid, 'SIGKILL');
    await alice.done;
    for (const [i, payload] of payloads.slice(3).entries()) {
      await send(producer, payload, () => segments(bus).length === 4 + i);
    }
    // A live anonymous consumer that has caught up.
    const anonymous = startFilebus([...common, '--from', 'latest', 'consumer'], { stdin: 'ignore' });
    const s = await statusWhen(bus, (x) => x.consumers.length === 2 && x.producers[0]?.chunks === 5, 'both consumers and 5 chunks');
    const total = sizes.reduce((a, b) => a + b, 0);
    expect(s).toMatchObject({
      mode: 'multicast',
      producerLive: true,
      newestChunk: { number: 5, bytes: 555, endOfStream: false },
      retained: { chunks: 5, bytes: total, oldest: 1, newest: 5 },
    });
    expect(s.producers).toEqual([expect.objectContaining({ pid: producer.pid, alive: true, mode: 'multicast', chunks: 5, bytes: total })]);
    expect(s.consumers[0]).toEqual({ id: 'alice', name: 'alice', alive: false, position: 4, lagChunks: 2, lagBytes: 4000 + 555 });
    expect(s.consumers[1]).toMatchObject({ name: null, alive: true, position: 6, lagChunks: 0, lagBytes: 0 });
    expect(s.consumers[1]!.id).toMatch(/^~/);

    // The text report shows the same, and looking changed nothing.
    const before = snapshot(dir);
    const text = await status(bus);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^mode: +multicast$/m);
    expect(text.stdout).toMatch(/^retained: +5 chunks, 6\.5 KiB \(segments 1 to 5\)$/m);
    expect(text.stdout).toMatch(/^consumers: +2, 1 alive$/m);
    expect(text.stdout).toMatch(/^ +alice +no +4 +2 +4\.4 KiB$/m);
    expect(text.stdout).toMatch(/^ +~\S+ \(anonymous\) +yes +6 +0 +0 B$/m);
    expect(snapshot(dir)).toEqual(before);

    // The library returns the same report as --json.
    const json = await statusJson(bus);
    const library = await busStatus(bus);
    expect(JSON.parse(JSON.stringify(library))).toEqual({ ...json, checkedAt: library.checkedAt, newestChunk: { ...json.newestChunk, ageSeconds: library.newestChunk!.ageSeconds } });

    // The stream ends: the end marker is the newest chunk, alice's lag counts it, the anonymous consumer is gone.
    producer.child.stdin!.end();
    expect(await within(producer.done, 15_000, 'producer')).toEqual({ code: 0, signal: null });
    expect(await within(anonymous.done, 15_000, 'anonymous consumer')).toEqual({ code: 0, signal: null });
    const ended = await statusJson(bus);
    expect(ended).toMatchObject({
      producerLive: false,
      producers: [],
      newestChunk: { number: 6, bytes: 0, endOfStream: true },
      retained: { chunks: 6, bytes: total, oldest: 1, newest: 6 },
      consumers: [{ id: 'alice', name: 'alice', alive: false, position: 4, lagChunks: 3, lagBytes: 4555 }],
    });
  });
});

describe('planted files', () => {
  it('a named pipe among the registrations is skipped, one as a cursor is an error naming it: status never hangs on either', async () => {
    const { bus } = tmp;
    const made = await runFilebus(['--filename', bus, '--multicast', 'producer'], { input: 'hello\n' });
    expect(made.code).toBe(0);
    execFileSync('mkfifo', [path.join(`${bus}.producers`, 'planted.producer')]);
    const s = await statusJson(bus);
    expect(s).toMatchObject({ mode: 'multicast', producers: [], producerLive: false });
    const cursor = path.join(`${bus}.consumers`, 'planted.cursor');
    execFileSync('mkfifo', [cursor]);
    const result = await status(bus);
    expect(result).toEqual({ code: 1, stdout: '', stderr: `filebus: cursor ${cursor} is not a regular file\n` });
  });
});

describe('a symlink at FILE', () => {
  it('is refused with one line naming it (exit 2): status never reports the size or age of what it names', async () => {
    const { dir, bus } = tmp;
    const made = await runFilebus(['--filename', bus, 'producer'], { input: 'hello\n' });
    expect(made.code).toBe(0);
    const secret = path.join(dir, 'secret');
    fs.writeFileSync(secret, 'x'.repeat(12345));
    fs.rmSync(bus, { force: true });
    fs.symlinkSync(secret, bus);
    const result = await status(bus, '--json');
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(new RegExp(`^filebus: bus file ${bus} is a symbolic link: refusing it[^\n]*\n$`));
    expect(result.stderr).not.toContain('12345');
  });
});

describe('--json', () => {
  it('prints exactly one JSON object with the documented fields, and nothing else', async () => {
    const { bus } = tmp;
    const made = await runFilebus(['--filename', bus, '--multicast', 'producer'], { input: 'hello\n' });
    expect(made.code).toBe(0);
    const result = await status(bus, '--json');
    expect(result.code).toBe(0);
    const parsed = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(Object.keys(parsed).sort()).toEqual(
      ['checkedAt', 'consumers', 'filename', 'lock', 'mode', 'newestChunk', 'producerLive', 'producers', 'retained', 'version'],
    );
    expect(Object.keys(parsed['newestChunk'] as object).sort()).toEqual(['ageSeconds', 'at', 'bytes', 'endOfStream', 'number']);
    expect(Object.keys(parsed['retained'] as object).sort()).toEqual(['bytes', 'chunks', 'newest', 'oldest']);
    expect(Number.isNaN(Date.parse(parsed['checkedAt'] as string))).toBe(false);
    // The stream: "hello\n" then the end marker.
    expect(parsed).toMatchObject({ mode: 'multicast', newestChunk: { number: 2, bytes: 0, endOfStream: true }, retained: { chunks: 2, bytes: 6 } });
  });

  it('--json with another command is a usage error', async () => {
    const { bus } = tmp;
    const result = await runFilebus(['--filename', bus, '--json', 'consumer'], { stdin: 'ignore' });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('filebus: --json applies only to status\n');
  });
});

function readCursorQuietly(file: string): number | undefined {
  try {
    return readCursor(file);
  } catch {
    return undefined;
  }
}
