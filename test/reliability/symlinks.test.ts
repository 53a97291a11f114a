/**
 * Symlinks planted where a bus keeps its files: at the reference's temporary
 * name (FILE.__new__), at FILE.lock, at FILE itself, at the multicast
 * directories (FILE.segments, FILE.consumers, FILE.producers -> elsewhere),
 * at a segment's name (one retained, one about to be published) and at a
 * cursor's name. filebus never writes through one: afterwards the target
 * is byte-identical, with the same inode, mtime and ctime. Each command
 * either fails with one clear line naming the planted path and a non-zero
 * exit, or works without touching the target.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { startFilebus, runFilebus, killAll } from '../helpers/procs.js';
import { until } from '../helpers/wait.js';
import { segments, segmentName, tempFiles, ringEntryPath } from '../helpers/bus-layout.js';
import { chunks as makeChunks, type Format } from '../helpers/records.js';
import { fingerprint, oneLineError, writeResults } from '../helpers/reliability.js';

const FORMAT: Format = { recordSize: 256, perChunk: 16 };
const BLOCK = ['--block-size', '4096'];
const dirs: string[] = [];
let outcomes: Record<string, string> = {};
let planted = 0;

afterEach(async () => {
  await killAll();
});

afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  writeResults('symlinks', { symlinksPlanted: planted, commandsRun: Object.keys(outcomes).length, targetsTouched: 0, outcomes });
});

interface Setup {
  dir: string;
  bus: string;
  /** A regular file a symlink points at. */
  victim: string;
  /** A directory a symlink points at, holding a file. */
  elsewhere: string;
  input: string;
}

function setup(): Setup {
  const dir = tempDir('filebus-reliability-symlink-');
  dirs.push(dir);
  const victim = path.join(dir, 'victim');
  fs.writeFileSync(victim, 'precious: must never change\n');
  const elsewhere = path.join(dir, 'elsewhere');
  fs.mkdirSync(elsewhere);
  fs.writeFileSync(path.join(elsewhere, 'keep'), 'keep me\n');
  const input = path.join(dir, 'input');
  fs.writeFileSync(input, makeChunks(FORMAT, 'SYML00', 3));
  const busDir = path.join(dir, 'bus-dir');
  fs.mkdirSync(busDir);
  // Timestamps of the targets must be distinguishable from any later write.
  const old = new Date(Date.now() - 3600_000);
  fs.utimesSync(victim, old, old);
  fs.utimesSync(path.join(elsewhere, 'keep'), old, old);
  fs.utimesSync(elsewhere, old, old);
  return { dir, bus: path.join(busDir, 'bus'), victim, elsewhere, input };
}

function plant(target: string, at: string): void {
  fs.symlinkSync(target, at);
  planted += 1;
}

type Outcome = 'failed' | 'worked';

/**
 * Runs a command with a symlink planted at `at`. It must either fail with
 * one line naming `at` (returns 'failed') or succeed ('worked'); a command
 * allowed to wait (a consumer) still running after `waitMs` is stopped and
 * counts as working.
 */
async function attempt(label: string, args: string[], at: string, options: { stdin?: string; mayWait?: boolean; waitMs?: number } = {}): Promise<Outcome> {
  const r = await runFilebus(args, { stdin: options.stdin === undefined ? 'ignore' : { file: options.stdin }, timeoutMs: options.waitMs ?? 30_000, onTimeout: 'report' });
  let outcome: Outcome;
  if (r.timedOut) {
    expect(options.mayWait, `${label}: only a consumer (or a waiting back-pressure producer) may keep running`).toBe(true);
    expect(r.stderr, `${label}: stderr`).toBe('');
    outcome = 'worked';
  } else if (r.code === 0) {
    expect(r.stderr, `${label}: stderr`).toBe('');
    outcome = 'worked';
  } else {
    expect(r.signal, `${label}: signal`).toBeNull();
    const message = oneLineError(r.stderr);
    expect(message.includes(at), `${label}: the message names ${at}: ${message}`).toBe(true);
    outcome = 'failed';
  }
  outcomes[label] = outcome === 'failed' ? `exit ${r.code}: ${oneLineError(r.stderr)}` : 'worked';
  return outcome;
}

describe('symlinks are never followed for writing', () => {
  it('at FILE.__new__ (the reference\'s temporary name): every mode works and the target is untouched', async () => {
    const s = setup();
    const before = fingerprint(s.victim);
    plant(s.victim, `${s.bus}.__new__`);
    for (const [mode, args] of [['lossy', []], ['back-pressure', ['--back-pressure']], ['multicast', ['--multicast']]] as const) {
      const consumer = mode === 'lossy' ? undefined : startFilebus(['--filename', s.bus, ...args, 'consumer']);
      expect(await attempt(`FILE.__new__, ${mode} producer`, ['--filename', s.bus, ...args, ...BLOCK, 'producer'], `${s.bus}.__new__`, { stdin: s.input })).toBe('worked');
      if (consumer) expect((await consumer.done).code).toBe(0);
    }
    expect(fingerprint(s.victim)).toEqual(before);
    expect(fs.readlinkSync(`${s.bus}.__new__`)).toBe(s.victim);
  });

  it('at FILE.lock: every producer and consumer refuses it or keeps clear of it; the target is untouched', async () => {
    const s = setup();
    const before = fingerprint(s.victim);
    const at = `${s.bus}.lock`;
    plant(s.victim, at);
    for (const [mode, args] of [['lossy', []], ['back-pressure', ['--back-pressure']], ['multicast', ['--multicast']]] as const) {
      expect(await attempt(`FILE.lock, ${mode} producer`, ['--filename', s.bus, ...args, ...BLOCK, 'producer'], at, { stdin: s.input })).toBe('failed');
    }
    // A lossy consumer takes no lock: it reads FILE and must not touch FILE.lock.
    fs.writeFileSync(s.bus, 'a chunk\n');
    await attempt('FILE.lock, lossy consumer', ['--filename', s.bus, 'consumer'], at, { mayWait: true, waitMs: 1500 });
    expect(await attempt('FILE.lock, back-pressure consumer', ['--filename', s.bus, '--back-pressure', 'consumer'], at)).toBe('failed');
    expect(await attempt('FILE.lock, multicast consumer', ['--filename', s.bus, '--multicast', 'consumer'], at)).toBe('failed');
    expect(fingerprint(s.victim)).toEqual(before);
    expect(fs.readlinkSync(at)).toBe(s.victim);
    expect(tempFiles(s.bus)).toEqual([]);
  });

  it('at FILE: producers of every mode replace the link, never the target', async () => {
    const s = setup();
    const before = fingerprint(s.victim);
    for (const [mode, args] of [['lossy', []], ['back-pressure', ['--back-pressure']], ['multicast', ['--multicast']]] as const) {
      fs.rmSync(s.bus, { force: true });
      plant(s.victim, s.bus);
      // A back-pressure producer takes whatever is at FILE for an unconsumed chunk, and waits.
      await attempt(`FILE, ${mode} producer`, ['--filename', s.bus, ...args, ...BLOCK, 'producer'], s.bus, {
        stdin: s.input, mayWait: mode === 'back-pressure', waitMs: mode === 'back-pressure' ? 1500 : 30_000,
      });
      expect(fingerprint(s.victim), mode).toEqual(before);
    }
  });

  it('at FILE and at a lossy ring name: consumers never read through it (FILE: one line naming it; a ring entry: skipped)', async () => {
    const s = setup();
    const before = fingerprint(s.victim);
    plant(s.victim, s.bus);
    for (const [mode, args] of [['lossy', []], ['back-pressure', ['--back-pressure']]] as const) {
      const r = await runFilebus(['--filename', s.bus, ...args, 'consumer'], { timeoutMs: 10_000 });
      expect(r.stdout.includes('precious'), `${mode} consumer emitted the target`).toBe(false);
      expect(r.code, `${mode} consumer`).toBe(2);
      expect(oneLineError(r.stderr)).toContain(s.bus);
      outcomes[`FILE, ${mode} consumer`] = `exit ${r.code}: ${oneLineError(r.stderr)}`;
    }
    fs.rmSync(s.bus);
    // A lossy consumer past its start, then a link at the next ring name, then chunks.
    const first = await runFilebus(['--filename', s.bus, ...BLOCK, 'producer'], { stdin: { file: s.input } });
    expect(first.code).toBe(0);
    const out: Buffer[] = [];
    const consumer = startFilebus(['--filename', s.bus, 'consumer'], { stdout: (d) => out.push(d) });
    await until(() => Buffer.concat(out).length > 0, 'the consumer to emit the current chunk', 20_000);
    plant(s.victim, ringEntryPath(s.bus, 1));
    const second = await runFilebus(['--filename', s.bus, ...BLOCK, 'producer'], { stdin: { file: s.input } });
    expect(second.code, second.stderr).toBe(0);
    const total = fs.statSync(s.input).size;
    // The current chunk, then at least two of the second stream's three.
    await until(() => Buffer.concat(out).length >= total || !consumer.running(), 'the second stream', 20_000);
    expect(consumer.running(), consumer.stderr()).toBe(true);
    expect(Buffer.concat(out).includes('precious'), 'the lossy consumer emitted the target').toBe(false);
    outcomes['ring entry, lossy consumer'] = 'skipped';
    expect(fingerprint(s.victim)).toEqual(before);
  });

  for (const dirName of ['segments', 'consumers', 'producers'] as const) {
    it(`at FILE.${dirName} (-> a directory elsewhere): multicast producer and consumer refuse it with one line; nothing lands elsewhere`, async () => {
      const s = setup();
      const before = fingerprint(s.elsewhere);
      const keepBefore = fingerprint(path.join(s.elsewhere, 'keep'));
      const at = `${s.bus}.${dirName}`;
      plant(s.elsewhere, at);
      expect(await attempt(`FILE.${dirName}, multicast producer`, ['--filename', s.bus, '--multicast', ...BLOCK, 'producer'], at, { stdin: s.input })).toBe('failed');
      // Long enough for a refusing consumer to exit on a loaded machine.
      const consumed = await attempt(`FILE.${dirName}, multicast consumer`, ['--filename', s.bus, '--multicast', 'consumer'], at, { mayWait: true, waitMs: dirName === 'producers' ? 1500 : 15_000 });
      // Consumers never use FILE.producers; the two others they must refuse.
      if (dirName !== 'producers') expect(consumed).toBe('failed');
      expect(fingerprint(s.elsewhere)).toEqual(before);
      expect(fingerprint(path.join(s.elsewhere, 'keep'))).toEqual(keepBefore);
      expect(fs.readlinkSync(at)).toBe(s.elsewhere);
    });
  }

  it('at a retained segment\'s name: a consumer refuses to read through it (emitting nothing of the target); retention unlinks the link, not the target', async () => {
    const s = setup();
    const before = fingerprint(s.victim);
    const made = await runFilebus(['--filename', s.bus, '--multicast', '--retain', 'all', ...BLOCK, 'producer'], { stdin: { file: s.input } });
    expect(made.code).toBe(0);
    const segs = segments(s.bus);
    expect(segs).toHaveLength(4); // 3 chunks and the end marker
    const first = fs.readFileSync(segs[0]!.path);
    fs.rmSync(segs[1]!.path);
    plant(s.victim, segs[1]!.path);
    const r = await runFilebus(['--filename', s.bus, '--multicast', '--from', 'earliest', 'consumer']);
    expect(r.code).not.toBe(0);
    expect(oneLineError(r.stderr).includes(segs[1]!.path), oneLineError(r.stderr)).toBe(true);
    expect(r.stdout.equals(first), 'the consumer emitted segment 1 and nothing from the link').toBe(true);
    outcomes['segment name, multicast consumer'] = `exit ${r.code}: ${oneLineError(r.stderr)}`;
    // A producer with a small window deletes old segments: the link goes, the target stays.
    expect(await attempt('segment name, multicast producer with --window 1', ['--filename', s.bus, '--multicast', '--window', '1', ...BLOCK, 'producer'],
      segs[1]!.path, { stdin: s.input })).toBe('worked');
    expect(fs.existsSync(segs[1]!.path)).toBe(false);
    expect(fingerprint(s.victim)).toEqual(before);
  });

  it('at the name the next segment would have: the producer numbers past it and never writes into the target; readers refuse the link', async () => {
    const s = setup();
    const before = fingerprint(s.victim);
    // Chunk 0 of the input would become segment 1: plant that exact name.
    fs.mkdirSync(`${s.bus}.segments`);
    const next = path.join(`${s.bus}.segments`, segmentName(1, makeChunks(FORMAT, 'SYML00', 1)));
    plant(s.victim, next);
    expect(await attempt('next segment name, multicast producer', ['--filename', s.bus, '--multicast', ...BLOCK, 'producer'], next, { stdin: s.input })).toBe('worked');
    expect(fs.readlinkSync(next), 'the link is left alone').toBe(s.victim);
    expect(segments(s.bus).map((x) => x.seq)).toEqual([1, 2, 3, 4, 5]);
    // The stream itself is intact after the link...
    const replay = await runFilebus(['--filename', s.bus, '--multicast', '--from', '2', 'consumer']);
    expect({ code: replay.code, stderr: replay.stderr }).toEqual({ code: 0, stderr: '' });
    expect(replay.stdout.equals(fs.readFileSync(s.input)), 'the stream is intact').toBe(true);
    // ...and a reader that reaches the link refuses it, emitting nothing of the target.
    expect(await attempt('next segment name, multicast consumer from the link', ['--filename', s.bus, '--multicast', '--from', 'earliest', 'consumer'], next)).toBe('failed');
    expect(fingerprint(s.victim)).toEqual(before);
  });

  it('at a cursor\'s name: the named consumer, other consumers, a producer doing retention and remove-consumer never write through it', async () => {
    const s = setup();
    const before = fingerprint(s.victim);
    const made = await runFilebus(['--filename', s.bus, '--multicast', ...BLOCK, 'producer'], { stdin: { file: s.input } });
    expect(made.code).toBe(0);
    const at = path.join(`${s.bus}.consumers`, 'alice.cursor');
    plant(s.victim, at);
    expect(await attempt('cursor name, the named consumer', ['--filename', s.bus, '--multicast', '--name', 'alice', 'consumer'], at)).toBe('failed');
    await attempt('cursor name, an anonymous consumer', ['--filename', s.bus, '--multicast', 'consumer'], at, { mayWait: true, waitMs: 3000 });
    await attempt('cursor name, another named consumer', ['--filename', s.bus, '--multicast', '--name', 'bob', 'consumer'], at, { mayWait: true, waitMs: 3000 });
    await attempt('cursor name, a producer doing retention', ['--filename', s.bus, '--multicast', '--window', '1', ...BLOCK, 'producer'], at, { stdin: s.input });
    expect(await attempt('cursor name, remove-consumer', ['--filename', s.bus, 'remove-consumer', 'alice'], at)).toBe('failed');
    expect(fingerprint(s.victim)).toEqual(before);
    expect(fs.readlinkSync(at)).toBe(s.victim);
  });
});
