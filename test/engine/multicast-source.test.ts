/**
 * Multicast coalescing (src/engine/multicast-source.ts, `readRun`): an
 * anonymous consumer read with `for await` and `coalesce: true` emits the
 * segments already waiting on the bus as one chunk of up to 1 MiB.
 *
 * Each test lays segments out on a real bus directory with the wire
 * functions (src/wire/segments.ts) and reads them with the public Consumer,
 * then checks what a user sees: the chunks (their bytes, so which segments
 * each one joined and in which order), where the stream ends, and the error
 * a damaged segment gives.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Consumer, FilebusError, type ConsumerOptions } from '../../src/index.js';
import { busPaths, segmentName, segmentsDir } from '../../src/wire/layout.js';
import { checksum } from '../../src/wire/segments.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { within } from '../helpers/wait.js';

const KiB = 1024;
const MiB = 1024 * KiB;

const tmp = useBusDir('filebus-coalesce-');

/** What to put at one sequence number: chunk bytes, an end marker, or something damaged. */
type Entry =
  | Buffer
  | 'end'
  | { readonly corrupt: Buffer }
  | { readonly directory: true };

/**
 * Writes `entries` as segments 1, 2, ... of `bus`, newest first (so that
 * only the numbers give the order, not the order the files appeared in).
 * A corrupt entry is named with the checksum of other bytes.
 */
function layOut(bus: string, entries: readonly Entry[]): void {
  const dir = segmentsDir(busPaths(bus));
  fs.mkdirSync(dir, { recursive: true });
  for (let i = entries.length - 1; i >= 0; i--) {
    const seq = i + 1;
    const entry = entries[i]!;
    if (entry === 'end') {
      fs.writeFileSync(path.join(dir, segmentName(seq, checksum([]))), '');
    } else if (Buffer.isBuffer(entry)) {
      fs.writeFileSync(path.join(dir, segmentName(seq, checksum([entry]))), entry);
    } else if ('corrupt' in entry) {
      const other = Buffer.from(entry.corrupt);
      other[0] = other[0]! ^ 0xff;
      fs.writeFileSync(path.join(dir, segmentName(seq, checksum([other]))), entry.corrupt);
    } else {
      fs.mkdirSync(path.join(dir, segmentName(seq, 0x12345678)));
    }
  }
}

interface Read {
  readonly chunks: Buffer[];
  readonly error: unknown;
}

/** Reads the bus from its oldest segment with `for await` until the stream ends or fails. */
async function readAll(bus: string, options: Partial<ConsumerOptions> = {}, onChunk?: (chunk: Buffer, index: number) => void): Promise<Read> {
  const consumer = new Consumer({ filename: bus, mode: 'multicast', from: 'earliest', coalesce: true, ...options });
  const chunks: Buffer[] = [];
  let error: unknown;
  try {
    await within((async () => {
      for await (const chunk of consumer) {
        chunks.push(Buffer.from(chunk));
        onChunk?.(chunk, chunks.length - 1);
      }
    })(), 20_000, 'the consumer to reach the end of the stream');
  } catch (caught) {
    error = caught;
  } finally {
    consumer.destroy();
  }
  return { chunks, error };
}

const sizes = (chunks: readonly Buffer[]): number[] => chunks.map((c) => c.length);

describe('multicast coalescing (readRun)', () => {
  it('joins the segments waiting into one chunk, in sequence order, and ends at the end marker', async () => {
    const segments = [1000, 1, 4096, 777, 64 * KiB].map((n) => randomBytes(n));
    layOut(tmp.bus, [...segments, 'end']);
    const { chunks, error } = await readAll(tmp.bus);
    expect(error).toBeUndefined();
    expect(sizes(chunks)).toEqual([1000 + 1 + 4096 + 777 + 64 * KiB]);
    expect(chunks[0]!.equals(Buffer.concat(segments))).toBe(true);
  });

  it('holds a run to 1 MiB: the segment that would pass it starts the next run', async () => {
    const segments = Array.from({ length: 7 }, () => randomBytes(300 * KiB));
    layOut(tmp.bus, [...segments, 'end']);
    const { chunks, error } = await readAll(tmp.bus);
    expect(error).toBeUndefined();
    expect(sizes(chunks)).toEqual([900 * KiB, 900 * KiB, 300 * KiB]);
    expect(Buffer.concat(chunks).equals(Buffer.concat(segments))).toBe(true);
  });

  it('fills a run to exactly 1 MiB', async () => {
    const segments = Array.from({ length: 6 }, () => randomBytes(256 * KiB));
    layOut(tmp.bus, [...segments, 'end']);
    const { chunks, error } = await readAll(tmp.bus);
    expect(error).toBeUndefined();
    expect(sizes(chunks)).toEqual([MiB, 512 * KiB]);
    expect(Buffer.concat(chunks).equals(Buffer.concat(segments))).toBe(true);
  });

  it('emits a segment larger than 1 MiB as a run of its own, whole', async () => {
    const segments = [randomBytes(10), randomBytes(MiB + MiB / 2), randomBytes(10), randomBytes(10)];
    layOut(tmp.bus, [...segments, 'end']);
    const { chunks, error } = await readAll(tmp.bus);
    expect(error).toBeUndefined();
    expect(sizes(chunks)).toEqual([10, MiB + MiB / 2, 20]);
    expect(Buffer.concat(chunks).equals(Buffer.concat(segments))).toBe(true);
  });

  it('never merges an end marker: the stream ends there, and the next stream\'s segments are not delivered', async () => {
    const first = [randomBytes(100), randomBytes(200), randomBytes(300)];
    layOut(tmp.bus, [...first, 'end', randomBytes(400), randomBytes(500), 'end']);
    const { chunks, error } = await readAll(tmp.bus);
    expect(error).toBeUndefined();
    expect(sizes(chunks)).toEqual([600]);
    expect(chunks[0]!.equals(Buffer.concat(first))).toBe(true);
  });

  it('ends a run before a segment whose checksum does not match its name, delivers the run, then fails naming that segment', async () => {
    const good = [randomBytes(100), randomBytes(200), randomBytes(300)];
    layOut(tmp.bus, [...good, { corrupt: randomBytes(400) }, randomBytes(500), 'end']);
    const { chunks, error } = await readAll(tmp.bus);
    expect(sizes(chunks)).toEqual([600]);
    expect(chunks[0]!.equals(Buffer.concat(good))).toBe(true);
    expect(error).toBeInstanceOf(FilebusError);
    expect((error as FilebusError).code).toBe('ERR_FILEBUS_CORRUPT');
    expect((error as Error).message).toMatch(/^segment \S+\/00000000000000000004\.[0-9a-f]{8} is corrupt: its checksum does not match its name$/);
  });

  it('fails at once, delivering nothing, when the first segment is damaged', async () => {
    layOut(tmp.bus, [{ corrupt: randomBytes(100) }, randomBytes(200), 'end']);
    const { chunks, error } = await readAll(tmp.bus);
    expect(chunks).toEqual([]);
    expect((error as FilebusError).code).toBe('ERR_FILEBUS_CORRUPT');
    expect((error as Error).message).toMatch(/00000000000000000001\.[0-9a-f]{8} is corrupt/);
  });

  it('ends a run before a name that is not a regular file, then fails naming it', async () => {
    const good = [randomBytes(100), randomBytes(200)];
    layOut(tmp.bus, [...good, { directory: true }, randomBytes(300), 'end']);
    const { chunks, error } = await readAll(tmp.bus);
    expect(sizes(chunks)).toEqual([300]);
    expect(chunks[0]!.equals(Buffer.concat(good))).toBe(true);
    expect((error as FilebusError).code).toBe('ERR_FILEBUS_CORRUPT');
    expect((error as Error).message).toMatch(/^segment \S+\/00000000000000000003\.12345678 is not a regular file$/);
  });

  it('joins only segments already there: those published after a run was read come in later runs, whole and in order', async () => {
    const early = [randomBytes(1000), randomBytes(2000)];
    const late = [randomBytes(3000), randomBytes(4000)];
    layOut(tmp.bus, early);
    const { chunks, error } = await readAll(tmp.bus, {}, (_chunk, index) => {
      if (index !== 0) return;
      const dir = segmentsDir(busPaths(tmp.bus));
      late.forEach((data, i) => fs.writeFileSync(path.join(dir, segmentName(3 + i, checksum([data]))), data));
      fs.writeFileSync(path.join(dir, segmentName(5, checksum([]))), '');
    });
    expect(error).toBeUndefined();
    expect(chunks[0]!.equals(Buffer.concat(early))).toBe(true);
    // Segments 3 and 4 in one run, or one each, as the wake-ups came: never cut or reordered.
    expect([[7000], [3000, 4000]]).toContainEqual(sizes(chunks.slice(1)));
    expect(Buffer.concat(chunks.slice(1)).equals(Buffer.concat(late))).toBe(true);
  });

  it.each([
    { who: 'an anonymous consumer without coalesce', options: { coalesce: false } },
    { who: 'a named consumer (coalesce is ignored: a restart repeats at most one segment)', options: { name: 'nora' } },
  ])('gives $who one chunk per segment', async ({ options }) => {
    const segments = [100, 200, 300, 400].map((n) => randomBytes(n));
    layOut(tmp.bus, [...segments, 'end']);
    const { chunks, error } = await readAll(tmp.bus, options);
    expect(error).toBeUndefined();
    expect(sizes(chunks)).toEqual([100, 200, 300, 400]);
    chunks.forEach((chunk, i) => expect(chunk.equals(segments[i]!)).toBe(true));
  });
});
