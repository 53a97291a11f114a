/**
 * Disk full: the bus lives on a 2 MiB tmpfs mounted by the test. When the
 * disk fills mid-stream the producer stops with one line on stderr naming
 * the problem ("no space left on device") and a non-zero exit, having
 * published no partial chunk and leaving no temporary file. Once space is
 * freed, a new producer continues and consumers see one consistent stream:
 * of the first producer, a prefix of its chunks, whole; then all of the
 * second's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { startFilebus, runFilebus, killAll } from '../helpers/procs.js';
import { within, until, delay } from '../helpers/wait.js';
import { segments, readCursor, tempFiles, cursorIds } from '../helpers/bus-layout.js';
import { chunkBytes, chunks as makeChunks, checkChunk, ChunkReader, type Format } from '../helpers/records.js';
import { BlockFeeder, oneLineError, mountTmpfs, fillDisk, writeResults } from '../helpers/reliability.js';

const MiB = 1024 * 1024;
let dir: string;
let mnt: string;
let unmount: () => void;
const figures: Record<string, unknown> = {};

beforeAll(() => {
  dir = tempDir('filebus-reliability-disk-');
  mnt = path.join(dir, 'mnt');
  unmount = mountTmpfs(mnt, 2 * MiB);
});

afterEach(async () => {
  await killAll();
  for (const name of fs.readdirSync(mnt)) fs.rmSync(path.join(mnt, name), { recursive: true, force: true });
});

afterAll(() => {
  unmount?.();
  fs.rmSync(dir, { recursive: true, force: true });
  writeResults('disk-full', figures);
});

const NO_SPACE = /no space left on device$/;

describe('disk full', () => {
  it('back-pressure: the producer stops with one "no space left" line, publishes nothing partial, leaves no temporary file; after space is freed a new producer continues', async () => {
    const format: Format = { recordSize: 256, perChunk: 16 }; // 4096 bytes: one atomic pipe write
    const size = chunkBytes(format);
    const bus = path.join(mnt, 'bus');
    const common = ['--filename', bus, '--back-pressure'];
    const reader = new ChunkReader(format);
    const consumer = startFilebus([...common, 'consumer'], { stdout: (d) => reader.push(d) });

    // The first producer is fed through a FIFO, so the test decides when the disk fills: after 20 chunks.
    // They go one at a time, so each is published alone (4 KiB), and the
    // files the bus recycles (its spare: docs/protocol.md) hold 4 KiB each.
    // After the fill the other 10 come in one 40 KiB write, which the
    // producer publishes in 8 KiB chunks (--block-size): those need pages
    // the full disk lacks.
    const feeder = new BlockFeeder(dir, 'a.fifo', (i) => makeChunks(format, 'AAAAAA', 1, i));
    const first = startFilebus([...common, '--block-size', String(2 * size), 'producer'], { stdin: { fd: feeder.readFd } });
    feeder.releaseReadEnd();
    for (let n = 1; n <= 20; n++) {
      feeder.start(() => n);
      await until(() => reader.chunks.length === n, `chunk ${n} through the bus`, 60_000);
    }
    const filler = fillDisk(mnt);
    expect(fs.statfsSync(mnt).bavail, 'the disk is full').toBe(0);
    const burst = fs.openSync(feeder.path, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    const rest = makeChunks(format, 'AAAAAA', 10, 20);
    expect(fs.writeSync(burst, rest), 'the burst, in one write').toBe(rest.length);
    fs.closeSync(burst);
    // Nothing more comes, and the pipe stays open: the failed producer must
    // still exit (a read of stdin blocked in libuv's thread pool used to
    // hold its exit until more input came).
    const failed = await within(first.done, 15_000, 'the producer to fail and exit while its input is open and idle');
    feeder.close();
    expect(failed.code, 'exit status').not.toBe(0);
    expect(failed.signal).toBeNull();
    expect(oneLineError(first.stderr())).toMatch(NO_SPACE);
    expect(tempFiles(bus), 'temporary files after the failure').toEqual([]);
    // Nothing partial was published: FILE, if there, is one whole chunk.
    if (fs.existsSync(bus)) checkChunk(fs.readFileSync(bus), format);
    await delay(300);
    const beforeFree = reader.chunks.length;
    expect(reader.error?.message).toBeUndefined();
    expect(reader.pending.length, 'the consumer got whole chunks only').toBe(0);

    // Space is freed; a second producer continues the stream.
    fs.rmSync(filler.path);
    const input = path.join(dir, 'b.in');
    fs.writeFileSync(input, makeChunks(format, 'BBBBBB', 30));
    const second = await within(runFilebus([...common, '--block-size', String(size), 'producer'], { stdin: { file: input } }), 60_000, 'the second producer');
    expect({ code: second.code, stderr: second.stderr }).toEqual({ code: 0, stderr: '' });
    const end = await within(consumer.done, 60_000, 'the consumer to take the end marker');
    expect({ ...end, stderr: consumer.stderr() }).toEqual({ code: 0, signal: null, stderr: '' });
    expect(reader.error?.message).toBeUndefined();
    expect(reader.pending.length).toBe(0);

    // One consistent stream: A 0..k-1 (everything the first producer published), then B 0..29.
    const a = reader.chunks.filter((c) => c.tag === 'AAAAAA').map((c) => c.index);
    const b = reader.chunks.filter((c) => c.tag === 'BBBBBB').map((c) => c.index);
    expect(a.length).toBeGreaterThanOrEqual(20);
    expect(a.length).toBeLessThanOrEqual(30);
    expect(a.every((v, i) => v === i), 'the first producer\'s chunks: a prefix, in order').toBe(true);
    expect(b).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(reader.chunks.map((c) => c.tag)).toEqual([...a.map(() => 'AAAAAA'), ...b.map(() => 'BBBBBB')]);
    expect(tempFiles(bus)).toEqual([]);
    expect(fs.existsSync(bus)).toBe(false);
    figures['back-pressure'] = {
      faultsInjected: 1,
      chunksBeforeDiskFull: 20,
      chunksPublishedByFailedProducer: a.length,
      chunksOnBusWhenSpaceFreed: beforeFree,
      chunksChecked: reader.chunks.length,
      chunksLost: 0,
      error: oneLineError(first.stderr()),
    };
  });

  it('multicast: segments fill the disk; the producer stops with one "no space left" line, every published segment whole; after space is freed a new producer continues the numbering', async () => {
    const format: Format = { recordSize: 1024, perChunk: 16 }; // 16 KiB chunks
    const size = chunkBytes(format);
    const bus = path.join(mnt, 'bus');
    const common = ['--filename', bus, '--multicast'];
    // Ballast, freed later to make room.
    const ballast = path.join(mnt, 'ballast');
    fs.writeFileSync(ballast, Buffer.alloc(512 * 1024));
    const readers = [new ChunkReader(format), new ChunkReader(format)];
    const consumers = [
      startFilebus([...common, '--name', 'keeper', 'consumer'], { stdout: (d) => readers[0]!.push(d) }),
      startFilebus([...common, 'consumer'], { stdout: (d) => readers[1]!.push(d) }),
    ];
    await until(() => cursorIds(bus).length === 2,
      'both consumers to register', 60_000);

    // 3 MiB of input (the default window is 256 chunks, 4 MiB): the disk fills first.
    const inputA = path.join(dir, 'a.in');
    fs.writeFileSync(inputA, makeChunks(format, 'AAAAAA', 192));
    const first = await within(runFilebus([...common, '--block-size', String(size), 'producer'], { stdin: { file: inputA } }), 60_000, 'the first producer');
    expect(first.code, 'exit status').not.toBe(0);
    expect(first.signal).toBeNull();
    expect(oneLineError(first.stderr)).toMatch(NO_SPACE);
    expect(tempFiles(bus), 'temporary files after the failure').toEqual([]);
    expect(fs.readdirSync(`${bus}.producers`), 'the failed producer unregistered').toEqual([]);
    // Every published segment is whole and true to its checksum; no end marker was written.
    const published = segments(bus);
    expect(published.length).toBeGreaterThan(10);
    expect(published.length).toBeLessThan(192);
    published.forEach((s, i) => {
      expect(s.seq).toBe(i + 1);
      expect(checkChunk(fs.readFileSync(s.path), format)).toEqual({ tag: 'AAAAAA', index: i });
    });
    // The consumers emit exactly what was published, and wait for more.
    for (const r of readers) await until(() => r.chunks.length === published.length, 'the consumers to catch up', 60_000);
    await delay(300);
    for (const [i, c] of consumers.entries()) {
      expect(c.running(), `consumer ${i} still waits`).toBe(true);
      expect(readers[i]!.chunks.length).toBe(published.length);
    }

    // Space is freed; a second producer continues where the first stopped.
    fs.rmSync(ballast);
    const inputB = path.join(dir, 'b.in');
    fs.writeFileSync(inputB, makeChunks(format, 'BBBBBB', 20));
    const second = await within(runFilebus([...common, '--block-size', String(size), 'producer'], { stdin: { file: inputB } }), 60_000, 'the second producer');
    expect({ code: second.code, stderr: second.stderr }).toEqual({ code: 0, stderr: '' });
    for (const [i, c] of consumers.entries()) {
      const end = await within(c.done, 60_000, `consumer ${i} to end`);
      expect({ ...end, stderr: c.stderr() }).toEqual({ code: 0, signal: null, stderr: '' });
    }
    const expected = [
      ...published.map((_, i) => ({ tag: 'AAAAAA', index: i })),
      ...Array.from({ length: 20 }, (_, i) => ({ tag: 'BBBBBB', index: i })),
    ];
    for (const r of readers) {
      expect(r.error?.message).toBeUndefined();
      expect(r.pending.length).toBe(0);
      expect(r.chunks).toEqual(expected);
    }
    const all = segments(bus);
    expect(all.at(-1)!.seq, 'numbering continued: one segment per chunk, then the end marker').toBe(published.length + 20 + 1);
    expect(readCursor(path.join(`${bus}.consumers`, 'keeper.cursor'))).toBe(published.length + 22);
    expect(tempFiles(bus)).toEqual([]);
    figures.multicast = {
      faultsInjected: 1,
      segmentsPublishedBeforeDiskFull: published.length,
      chunksChecked: readers.reduce((n, r) => n + r.chunks.length, 0),
      chunksLost: 0,
      error: oneLineError(first.stderr),
    };
  });

  it('multicast: a named consumer that could not register on a full disk registers once space is freed, and leaves the bus usable for others', async () => {
    const bus = path.join(mnt, 'bus');
    const common = ['--filename', bus, '--multicast'];
    const input = path.join(dir, 'small.in');
    fs.writeFileSync(input, 'three\nsmall\nchunks\n');
    const made = await runFilebus([...common, '--block-size', '6', 'producer'], { stdin: { file: input } });
    expect({ code: made.code, stderr: made.stderr }).toEqual({ code: 0, stderr: '' });
    const filler = fillDisk(mnt);

    const refused = await runFilebus([...common, '--name', 'late', 'consumer'], { timeoutMs: 30_000 });
    expect(refused.code, 'exit status on a full disk').toBe(1);
    expect(oneLineError(refused.stderr)).toMatch(NO_SPACE);
    expect(refused.stdout.length).toBe(0);

    fs.rmSync(filler.path);
    // With space again, the same name can join and replay the ended stream, and so can anyone else.
    const named = await runFilebus([...common, '--name', 'late', 'consumer'], { timeoutMs: 30_000 });
    expect({ code: named.code, stderr: named.stderr, out: named.stdout.toString() }).toEqual({ code: 0, stderr: '', out: 'three\nsmall\nchunks\n' });
    const anonymous = await runFilebus([...common, 'consumer'], { timeoutMs: 30_000 });
    expect({ code: anonymous.code, stderr: anonymous.stderr, out: anonymous.stdout.toString() }).toEqual({ code: 0, stderr: '', out: 'three\nsmall\nchunks\n' });
  });
});
