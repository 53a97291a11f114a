/**
 * More than one producer on a multicast bus: two at once (their chunks
 * interleave whole; the last to finish publishes the end marker), and one killed
 * mid-stream and replaced by another (numbering continues, its leftover
 * temporary file is in nobody's way).
 */
import fs from 'node:fs';
import path from 'node:path';
import { flockSync } from 'fs-ext';
import { describe, expect, it } from 'vitest';
import { writeInput, mc } from '../helpers/cli.js';
import { startFilebus, runFilebus } from '../helpers/procs.js';
import { within, until } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { segments, cursorPath, registered, readCursor, tempFiles, busLockFree, registrations } from '../helpers/bus-layout.js';
import { RECORD_SIZE, records, parseRecords, type Tagged } from '../helpers/records.js';

const tmp = useBusDir('filebus-multicast-');

function fileSize(file: string): number | undefined {
  try {
    return fs.statSync(file).size;
  } catch {
    return undefined;
  }
}

const BLOCK = 4096; // 64 records

/** Checks that `got` holds every record 0..count-1 of each tag exactly once, each tag's in order. */
function expectEveryRecordInOrder(got: readonly Tagged[], counts: Record<string, number>): void {
  const byTag = new Map<string, number[]>();
  for (const r of got) {
    if (!(r.tag in counts)) throw new Error(`unexpected record tag ${r.tag}`);
    let seqs = byTag.get(r.tag);
    if (!seqs) byTag.set(r.tag, (seqs = []));
    seqs.push(r.seq);
  }
  for (const [tag, count] of Object.entries(counts)) {
    const seqs = byTag.get(tag) ?? [];
    const firstWrong = seqs.findIndex((seq, i) => seq !== i);
    expect({ tag, count: seqs.length, firstWrong }).toEqual({ tag, count, firstWrong: -1 });
  }
}

describe('multicast with several producers', () => {
  it('two producers at once: every record of both, each in order, none torn or repeated; one end marker, from the last to finish', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const perProducer = (2 * 1024 * 1024) / RECORD_SIZE; // 2 MiB each
    const inputs = { A: records('A', perProducer), B: records('B', perProducer) };
    const files = { A: writeInput(dir, 'a', inputs.A), B: writeInput(dir, 'b', inputs.B) };

    const early = startFilebus(mc(bus, '--name', 'early', 'consumer'));
    await until(() => registered(bus, 'early'), 'the early consumer to register');
    // Both producers must be registered before either can finish: one that ends alone ends the
    // stream. Each gets its first chunk through a pipe, the rest once both are in the registry.
    const producers = (['A', 'B'] as const).map((tag) =>
      startFilebus(mc(bus, '--retain', 'all', '--block-size', String(BLOCK), 'producer'), { stdin: 'pipe' }));
    const firstChunk = BLOCK;
    producers.forEach((p, i) => p.stdin?.write(inputs[i === 0 ? 'A' : 'B'].subarray(0, firstChunk)));
    await until(() => registrations(bus).length === 2, 'both producers to register');
    producers.forEach((p, i) => p.stdin?.end(inputs[i === 0 ? 'A' : 'B'].subarray(firstChunk)));
    for (const p of await within(Promise.all(producers.map((p) => p.ended)), 30_000, 'both producers')) {
      expect(p).toMatchObject({ code: 0, signal: null, stderr: '' });
    }
    const first = await within(early.ended, 30_000, 'the early consumer');
    expect({ code: first.code, stderr: first.stderr }).toEqual({ code: 0, stderr: '' });

    // The stream ends once, when its last producer finishes: one empty segment, the newest.
    const all = segments(bus);
    expect(all.map((s) => s.seq)).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
    const markers = all.filter((s) => fs.statSync(s.path).size === 0).map((s) => s.seq);
    expect(markers).toEqual([all.length]);
    // Every chunk is whole records: the two streams interleave by chunk, never inside one.
    for (const s of all) expect(fs.statSync(s.path).size % RECORD_SIZE).toBe(0);
    const everything = Buffer.concat(all.map((s) => fs.readFileSync(s.path)));

    // The consumer that was there from the start has every chunk of both producers.
    expect(first.stdout.equals(everything)).toBe(true);
    expect(readCursor(cursorPath(bus, 'early'))).toBe(all.length + 1);
    const got = parseRecords(first.stdout);
    expect(got.length).toBe(2 * perProducer);
    expectEveryRecordInOrder(got, { A: perProducer, B: perProducer });
    // A late consumer replays the same whole stream.
    const earliest = await within(runFilebus(mc(bus, 'consumer', '--from', 'earliest')), 30_000, 'a --from earliest consumer');
    expect({ code: earliest.code, stderr: earliest.stderr }).toEqual({ code: 0, stderr: '' });
    expect(earliest.stdout.equals(everything)).toBe(true);
    // The producers unregistered themselves.
    expect(fs.readdirSync(`${bus}.producers`)).toEqual([]);
  });

  it('a registration a producer was killed before renaming into place is removed by the next producer; one still held is not', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const registry = `${bus}.producers`;
    fs.mkdirSync(registry);
    // What a producer SIGKILLed between creating and renaming its registration leaves.
    const dead = '.vm.4242.0badcafe.producer.new';
    fs.writeFileSync(path.join(registry, dead), '');
    // And one being created right now: its producer holds an exclusive flock on it.
    const creating = '.vm.4343.c0ffee00.producer.new';
    const fd = fs.openSync(path.join(registry, creating), 'w');
    flockSync(fd, 'exnb');
    try {
      const input = records('A', 64);
      const result = await within(runFilebus(mc(bus, '--block-size', String(BLOCK), 'producer'), { stdin: { file: writeInput(dir, 'a', input) } }), 30_000, 'the producer');
      expect(result).toMatchObject({ code: 0, signal: null, stderr: '' });
      expect(fs.readdirSync(registry)).toEqual([creating]);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('a producer killed mid-stream, then a new one: the consumer gets what was published, then the new stream; numbering continues', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const window = 8;
    const perChunk = BLOCK / RECORD_SIZE;
    const inputA = records('A', 256 * perChunk);
    const inputB = records('B', 128 * perChunk);
    const fileA = writeInput(dir, 'a', inputA);
    const fileB = writeInput(dir, 'b', inputB);

    // alice is named and stays running, but stopped (SIGSTOP): she holds the
    // first producer at the window, so it is killed while blocked, with its
    // next chunk already written to a temporary file.
    const alice = startFilebus(mc(bus, '--name', 'alice', 'consumer'));
    // Registered, and out of the bus lock she takes to register (stopped inside it, she would wedge the bus).
    await until(() => registered(bus, 'alice') && busLockFree(bus), 'alice to register');
    alice.child.kill('SIGSTOP');
    const args = mc(bus, '--window', String(window), '--block-size', String(BLOCK), 'producer');
    const first = startFilebus(args, { stdin: { file: fileA } });
    // Blocked: the window is full and its next chunk is written out whole.
    const blocked = (): boolean => {
      const temps = tempFiles(bus, first.pid);
      return segments(bus).length === window && temps.length === 1 && fileSize(path.join(dir, temps[0]!)) === BLOCK;
    };
    await until(blocked,
      'the first producer to block at the window', 20_000, { detail: () => `${segments(bus).length} segments, temp files ${tempFiles(bus).join(',')}` });
    first.child.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });

    const published = segments(bus);
    expect(published.map((s) => s.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const leftover = tempFiles(bus, first.pid);
    expect(leftover).toHaveLength(1);
    expect(fs.statSync(path.join(dir, leftover[0]!)).size).toBe(BLOCK);

    alice.child.kill('SIGCONT');
    const second = await within(startFilebus(args, { stdin: { file: fileB } }).ended, 30_000, 'the second producer');
    expect(second).toMatchObject({ code: 0, signal: null, stderr: '' });
    const got = await within(alice.ended, 30_000, 'alice');
    expect({ code: got.code, stderr: got.stderr }).toEqual({ code: 0, stderr: '' });

    // The first producer's 8 published chunks, then all of the second's.
    const expected = Buffer.concat([inputA.subarray(0, window * BLOCK), inputB]);
    expect(got.stdout.length).toBe(expected.length);
    expect(got.stdout.equals(expected)).toBe(true);
    const recs = parseRecords(got.stdout);
    expect(recs.slice(0, window * perChunk).every((r, i) => r.tag === 'A' && r.seq === i)).toBe(true);
    expect(recs.slice(window * perChunk).every((r, i) => r.tag === 'B' && r.seq === i)).toBe(true);

    // Numbering went on from 8: 128 chunks (9..136), then the end marker, 137.
    const end = segments(bus).at(-1)!;
    expect(end.seq).toBe(window + 128 + 1);
    expect(fs.statSync(end.path).size).toBe(0);
    expect(readCursor(cursorPath(bus, 'alice'))).toBe(window + 128 + 2);
    // The killed producer's leftover temporary file was cleared by the next one, and no other remains.
    expect(tempFiles(bus)).toEqual([]);
    // Nor does its registration hold anything: the second producer ended the stream.
    expect(fs.readdirSync(`${bus}.producers`)).toEqual([]);
  });
});
