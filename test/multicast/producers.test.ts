/**
 * More than one producer on a multicast bus: two at once (their chunks
 * interleave whole; each publishes its own end marker), and one killed
 * mid-stream and replaced by another (numbering continues, its leftover
 * temporary file is in nobody's way).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  busLockFree, cleanup, cursorPath, mc, parseRecords, readCursor, RECORD, records, registered, run, scratch, segments, start, tempFiles, until,
  within, writeInput, type Tagged,
} from '../helpers/multicast.js';

afterEach(cleanup);

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
  it('two producers at once: every record of both, each in order, none torn or repeated, split at the first end marker', async () => {
    const dir = scratch();
    const bus = path.join(dir, 'bus');
    const perProducer = (2 * 1024 * 1024) / RECORD; // 2 MiB each
    const inputs = { A: records('A', perProducer), B: records('B', perProducer) };
    const files = { A: writeInput(dir, 'a', inputs.A), B: writeInput(dir, 'b', inputs.B) };

    const early = start(mc(bus, '--name', 'early', 'consumer'));
    await until(() => registered(bus, 'early'), 'the early consumer to register');
    const producers = (['A', 'B'] as const).map((tag) =>
      start(mc(bus, '--retain', 'all', '--block-size', String(BLOCK), 'producer'), { stdin: files[tag] }));
    for (const p of await within(Promise.all(producers.map((p) => p.done)), 30_000, 'both producers')) {
      expect(p).toMatchObject({ code: 0, signal: null, stderr: '' });
    }
    const first = await within(early.done, 30_000, 'the early consumer');
    expect({ code: first.code, stderr: first.stderr }).toEqual({ code: 0, stderr: '' });

    // Each producer ended its stream with an empty segment; the newest is the second one.
    const all = segments(bus);
    expect(all.map((s) => s.seq)).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
    const markers = all.filter((s) => fs.statSync(s.path).size === 0).map((s) => s.seq);
    expect(markers).toHaveLength(2);
    const [end1, end2] = markers as [number, number];
    expect(end2).toBe(all.length);
    const concat = (from: number, to: number): Buffer =>
      Buffer.concat(all.filter((s) => s.seq >= from && s.seq < to).map((s) => fs.readFileSync(s.path)));
    // Every chunk is whole records: the two streams interleave by chunk, never inside one.
    for (const s of all) expect(fs.statSync(s.path).size % RECORD).toBe(0);

    // The consumer that was there from the start stops at the first end
    // marker: it has everything published before it ...
    expect(first.stdout.equals(concat(1, end1))).toBe(true);
    expect(readCursor(cursorPath(bus, 'early'))).toBe(end1 + 1);
    // ... and the rest is the stream after it, which a consumer joining now
    // gets by default, or from the segment after the first marker.
    const rest = await within(run(mc(bus, 'consumer')), 30_000, 'a late default consumer');
    expect({ code: rest.code, stderr: rest.stderr }).toEqual({ code: 0, stderr: '' });
    expect(rest.stdout.equals(concat(end1 + 1, end2))).toBe(true);
    const fromAfter = await within(run(mc(bus, 'consumer', '--from', String(end1 + 1))), 30_000, 'a --from consumer');
    expect(fromAfter.code).toBe(0);
    expect(fromAfter.stdout.equals(rest.stdout)).toBe(true);
    // --from earliest replays the first stream only: it too stops at the first marker.
    const earliest = await within(run(mc(bus, 'consumer', '--from', 'earliest')), 30_000, 'a --from earliest consumer');
    expect(earliest.code).toBe(0);
    expect(earliest.stdout.equals(first.stdout)).toBe(true);

    const got = parseRecords(Buffer.concat([first.stdout, rest.stdout]));
    expect(got.length).toBe(2 * perProducer);
    expectEveryRecordInOrder(got, { A: perProducer, B: perProducer });
    // The producer that finished first has all of its records before the first marker.
    const before = parseRecords(first.stdout);
    const finishedFirst = (['A', 'B'] as const).find((tag) => before.filter((r) => r.tag === tag).length === perProducer);
    expect(finishedFirst).toBeDefined();
  });

  it('a producer killed mid-stream, then a new one: the consumer gets what was published, then the new stream; numbering continues', async () => {
    const dir = scratch();
    const bus = path.join(dir, 'bus');
    const window = 8;
    const perChunk = BLOCK / RECORD;
    const inputA = records('A', 256 * perChunk);
    const inputB = records('B', 128 * perChunk);
    const fileA = writeInput(dir, 'a', inputA);
    const fileB = writeInput(dir, 'b', inputB);

    // alice is named and stays running, but stopped (SIGSTOP): she holds the
    // first producer at the window, so it is killed while blocked, with its
    // next chunk already written to a temporary file.
    const alice = start(mc(bus, '--name', 'alice', 'consumer'));
    // Registered, and out of the bus lock she takes to register (stopped inside it, she would wedge the bus).
    await until(() => registered(bus, 'alice') && busLockFree(bus), 'alice to register');
    alice.child.kill('SIGSTOP');
    const args = mc(bus, '--window', String(window), '--block-size', String(BLOCK), 'producer');
    const first = start(args, { stdin: fileA });
    // Blocked: the window is full and its next chunk is written out whole.
    const blocked = (): boolean => {
      const temps = tempFiles(bus, first.pid);
      return segments(bus).length === window && temps.length === 1 && fileSize(path.join(dir, temps[0]!)) === BLOCK;
    };
    await until(blocked,
      'the first producer to block at the window', 20_000, () => `${segments(bus).length} segments, temp files ${tempFiles(bus).join(',')}`);
    first.child.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });

    const published = segments(bus);
    expect(published.map((s) => s.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const leftover = tempFiles(bus, first.pid);
    expect(leftover).toHaveLength(1);
    expect(fs.statSync(path.join(dir, leftover[0]!)).size).toBe(BLOCK);

    alice.child.kill('SIGCONT');
    const second = await within(start(args, { stdin: fileB }).done, 30_000, 'the second producer');
    expect(second).toMatchObject({ code: 0, signal: null, stderr: '' });
    const got = await within(alice.done, 30_000, 'alice');
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
  });
});
