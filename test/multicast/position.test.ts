/**
 * The library's multicast Consumer reports where it is: `consumer.position`
 * is { position, head, lagChunks } — the next segment it will emit, the
 * newest segment on the bus, and how many published segments it has yet to
 * emit (head - position + 1) — as of the chunk being handled.
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Consumer, Producer } from '../../src/index.js';
import { randomData, writeInput, mc } from '../helpers/cli.js';
import { startFilebus, runFilebus } from '../helpers/procs.js';
import { within, until } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { cursorIds, registered } from '../helpers/bus-layout.js';

const BLOCK = 4096;
const CHUNKS = 10;

const tmp = useBusDir('filebus-multicast-');
const opened: Consumer[] = [];
// Runs before the fixture's cleanup (after-hooks run last registered first).
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
});

function consumer(filename: string, from?: 'earliest'): Consumer {
  const c = new Consumer({ filename, mode: 'multicast', ...(from && { from }) });
  opened.push(c);
  return c;
}

/** Whether one cursor has been created and written on the bus. */
function oneCursorRegistered(bus: string): boolean {
  const ids = cursorIds(bus);
  return ids.length === 1 && registered(bus, ids[0]!);
}

describe('library Consumer.position (multicast)', () => {
  it('replaying a retained stream: position counts up, head is the end marker, lag counts down', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const input = randomData(CHUNKS * BLOCK);
    const produced = await runFilebus(mc(bus, '--retain', 'all', '--block-size', String(BLOCK), 'producer'), { stdin: { file: writeInput(dir, 'input', input) } });
    expect(produced.code).toBe(0);

    const c = consumer(bus, 'earliest');
    expect(c.position).toBeUndefined();
    const seen: unknown[] = [];
    const chunks: Buffer[] = [];
    await within((async () => {
      for await (const chunk of c) {
        chunks.push(chunk);
        seen.push({ ...c.position });
      }
    })(), 20_000, 'the replay');
    expect(Buffer.concat(chunks).equals(input)).toBe(true);
    // 10 chunks and the end marker (11) are on the bus throughout.
    expect(seen).toEqual(Array.from({ length: CHUNKS }, (_, i) => ({ position: i + 1, head: CHUNKS + 1, lagChunks: CHUNKS + 1 - i })));
  });

  it('falling behind a live producer: head and lag show what has been published since', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const input = randomData(CHUNKS * BLOCK);
    const c = consumer(bus);
    const it = c[Symbol.asyncIterator]();
    const firstChunk = it.next();
    await until(() => oneCursorRegistered(bus), 'the consumer to register');

    const producer = startFilebus(mc(bus, '--block-size', String(BLOCK), 'producer'), { stdin: { file: writeInput(dir, 'input', input) } });
    const first = await within(firstChunk, 20_000, 'the first chunk');
    expect(first.done).toBe(false);
    const atFirst = { ...c.position! };

    // While chunk 1 is being handled, the producer publishes everything and the end marker.
    expect((await within(producer.done, 20_000, 'the producer')).code).toBe(0);
    const seen: unknown[] = [];
    const chunks: Buffer[] = [first.value as Buffer];
    for (;;) {
      const next = await within(it.next(), 20_000, 'the next chunk');
      if (next.done) break;
      chunks.push(next.value);
      seen.push({ ...c.position });
    }
    expect(Buffer.concat(chunks).equals(input)).toBe(true);
    expect(seen).toEqual(Array.from({ length: CHUNKS - 1 }, (_, i) => ({ position: i + 2, head: CHUNKS + 1, lagChunks: CHUNKS - i })));
    // Handling chunk 1, which is on the bus (with maybe more): head is at least 1.
    expect(atFirst.position).toBe(1);
    expect(atFirst.head).toBeGreaterThanOrEqual(1);
    expect(atFirst.lagChunks).toBe(atFirst.head);
  });

  it('keeping up with a live producer: the chunk being handled is the head, lag 1', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const c = consumer(bus);
    const it = c[Symbol.asyncIterator]();
    let pending = it.next();
    await until(() => oneCursorRegistered(bus), 'the consumer to register');
    const producer = new Producer({ filename: bus, mode: 'multicast', blockSize: BLOCK });
    const seen: unknown[] = [];
    try {
      for (let i = 1; i <= 5; i++) {
        const data = randomData(BLOCK);
        producer.write(data);
        const got = await within(pending, 20_000, `chunk ${i}`);
        expect(got.done).toBe(false);
        expect((got.value as Buffer).equals(data)).toBe(true);
        seen.push({ ...c.position });
        pending = it.next();
      }
    } finally {
      await producer.close();
    }
    expect((await within(pending, 20_000, 'the end')).done).toBe(true);
    expect(seen).toEqual([1, 2, 3, 4, 5].map((i) => ({ position: i, head: i, lagChunks: 1 })));
  });
});
