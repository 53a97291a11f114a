/**
 * The retention window with a slow consumer: the producer is held back to
 * the slowest live consumer, a fast consumer never gets more than a window
 * ahead of it, and FILE.segments never holds more than the window.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256, randomData, writeInput, mc } from '../helpers/cli.js';
import { startFilebus } from '../helpers/procs.js';
import { within, until } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { segments, sampleSegmentCount, cursorPath, cursorIds, registered, readCursor } from '../helpers/bus-layout.js';

const tmp = useBusDir('filebus-multicast-');

describe('multicast window', () => {
  it('a slow consumer throttles the producer, receives everything, and bounds the fast one and the disk', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const window = 16;
    const block = 16384;
    const chunks = 256;
    const input = randomData(chunks * block);
    // From a file, the producer reads whole multiples of the block: every chunk is a full block.
    const inputFile = writeInput(dir, 'input', input);

    // The slow one is named so that its cursor, which records how far it has
    // written, can be read at any moment.
    const slow = startFilebus(mc(bus, '--name', 'slow', 'consumer'), { paused: true });
    const fast = startFilebus(mc(bus, 'consumer'));
    await until(() => cursorIds(bus).length === 2 && registered(bus, 'slow'), 'both consumers to register');
    slow.throttle(block, 3); // one chunk every 3 ms at most

    const counts = sampleSegmentCount(bus, 20);
    interface Sample { fast: number; slowReceived: number; slowCursor: number }
    const positions: Sample[] = [];
    const slowCursorFile = cursorPath(bus, 'slow');
    const sample = (): void => {
      // Fast first, then the cursor: both only grow, so fast(t1) <= head(t1) <= cursor(t1) - 1 + window <= cursor(t2) - 1 + window.
      const fastChunks = Math.floor(fast.stdoutBytes() / block);
      const slowReceived = Math.floor(slow.stdoutBytes() / block);
      positions.push({ fast: fastChunks, slowReceived, slowCursor: readCursor(slowCursorFile)! });
    };
    const sampler = setInterval(sample, 20);

    const producer = startFilebus(mc(bus, '--window', String(window), '--block-size', String(block), 'producer'), { stdin: { file: inputFile } });
    let slowCursorAtProducerExit = 0;
    void producer.exited.then(() => { slowCursorAtProducerExit = readCursor(slowCursorFile)!; });
    const produced = await within(producer.ended, 40_000, 'the producer');
    const [fastEnd, slowEnd] = await within(Promise.all([fast.ended, slow.ended]), 40_000, 'the consumers');
    clearInterval(sampler);
    sample();
    const samples = counts.stop();

    expect(produced).toMatchObject({ code: 0, stderr: '' });
    expect({ code: fastEnd.code, stderr: fastEnd.stderr, bytes: fastEnd.bytes }).toEqual({ code: 0, stderr: '', bytes: input.length });
    expect({ code: slowEnd.code, stderr: slowEnd.stderr, bytes: slowEnd.bytes }).toEqual({ code: 0, stderr: '', bytes: input.length });
    expect(sha256(fastEnd.stdout)).toBe(sha256(input));
    expect(sha256(slowEnd.stdout)).toBe(sha256(input));

    // The disk: never more segment files than the window, and the window was used.
    expect(samples.length).toBeGreaterThan(5);
    expect(Math.max(...samples)).toBeLessThanOrEqual(window);
    expect(Math.max(...samples)).toBeGreaterThanOrEqual(window / 2);

    // The fast consumer: never more than a window ahead of the slow one's position.
    const violations = positions.filter((p) => p.fast > p.slowCursor - 1 + window);
    expect(violations).toEqual([]);
    // The slow one really was behind: in its own received output, the fast
    // consumer got at least half a window ahead at some point.
    expect(Math.max(...positions.map((p) => p.fast - p.slowReceived))).toBeGreaterThanOrEqual(window / 2);
    // The producer was throttled: it could publish the end marker (segment
    // chunks + 1) only once the slow consumer was less than a window behind it.
    expect(slowCursorAtProducerExit).toBeGreaterThanOrEqual(chunks + 2 - window);
    // The slow consumer is named: its cursor stays, past the end marker.
    expect(readCursor(slowCursorFile)).toBe(chunks + 2);
    expect(segments(bus).length).toBeLessThanOrEqual(window);
  });

  it('a window in bytes bounds the bytes in FILE.segments', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const block = 4096;
    const input = randomData(256 * block);
    const slow = startFilebus(mc(bus, 'consumer'), { paused: true });
    await until(() => cursorIds(bus).length === 1, 'the consumer to register');
    slow.throttle(block, 2);
    const sizes: number[] = [];
    const sampler = setInterval(() => {
      let total = 0;
      for (const s of segments(bus)) {
        try { total += fs.statSync(s.path).size; } catch { /* deleted since listed */ }
      }
      sizes.push(total);
    }, 20);
    const producer = startFilebus(mc(bus, '--window', '64KiB', '--block-size', String(block), 'producer'), { stdin: { file: writeInput(dir, 'input', input) } });
    const [produced, consumed] = await within(Promise.all([producer.ended, slow.ended]), 40_000, 'producer and consumer');
    clearInterval(sampler);
    expect(produced).toMatchObject({ code: 0, stderr: '' });
    expect({ code: consumed.code, stderr: consumed.stderr, sha256: sha256(consumed.stdout) }).toEqual({ code: 0, stderr: '', sha256: sha256(input) });
    expect(sizes.length).toBeGreaterThan(5);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(64 * 1024);
    expect(Math.max(...sizes)).toBeGreaterThanOrEqual(32 * 1024);
  });
});

describe('multicast retention with a remembered view of the cursors', () => {
  it('a dead named cursor holding retention, removed and its name started again earlier than it was: every consumer gets its whole stream, none loses a segment', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const block = 4096;
    const window = 8;
    // Dead named consumers (nobody holds their cursors): retention keeps
    // what they have not read, so the window stays full and every publish
    // makes a pass on what the producer remembers of the cursors.
    fs.mkdirSync(`${bus}.consumers`, { recursive: true });
    const producer = startFilebus(mc(bus, '--window', String(window), '--block-size', String(block), 'producer'), { stdin: 'pipe' });
    let sent = 0;
    const send = async (count: number): Promise<void> => {
      for (let i = 0; i < count; i++, sent++) {
        producer.stdin!.write(Buffer.alloc(block, sent % 251));
        await new Promise((r) => setTimeout(r, 2));
      }
    };
    const live = startFilebus(mc(bus, 'consumer', '--from', 'earliest'));
    await until(() => cursorIds(bus).length === 1, 'the live consumer to register');
    // ivy reads 20 chunks and is killed: her cursor holds segment 21 on.
    const ivy = startFilebus(mc(bus, '--name', 'ivy', 'consumer'));
    await until(() => registered(bus, 'ivy'), 'ivy to register');
    await send(20);
    await until(() => ivy.stdoutBytes() === 20 * block && readCursor(cursorPath(bus, 'ivy')) === 21, 'ivy to deliver 20 chunks');
    ivy.child.kill('SIGKILL');
    await ivy.exited;
    await send(40);
    // Still held for ivy.
    await until(() => segments(bus)[0]?.seq === 21, 'segments 21 on to be kept for ivy', 20_000, { detail: () => `oldest ${segments(bus)[0]?.seq}` });
    // Removed, then started again under her name at once, from the oldest
    // retained segment, lower than where the producer last saw her.
    const removed = await within(startFilebus(mc(bus, 'remove-consumer', 'ivy')).ended, 10_000, 'remove-consumer');
    expect(removed).toMatchObject({ code: 0, stderr: '' });
    await send(30);
    const again = startFilebus(mc(bus, '--name', 'ivy', 'consumer', '--from', 'earliest'));
    await until(() => registered(bus, 'ivy'), 'ivy to register again');
    await send(60);
    producer.stdin!.end();
    expect(await within(producer.ended, 30_000, 'the producer')).toMatchObject({ code: 0, stderr: '' });
    const total = 20 + 40 + 30 + 60;
    const [liveEnd, againEnd] = await within(Promise.all([live.ended, again.ended]), 30_000, 'the consumers');
    expect({ code: liveEnd.code, stderr: liveEnd.stderr, bytes: liveEnd.bytes }).toEqual({ code: 0, stderr: '', bytes: total * block });
    // ivy, started again, has every chunk from where she joined (chunk N is filled with N - 1) to the end.
    const from = againEnd.stdout[0]! + 1;
    expect(from).toBeLessThanOrEqual(20 + 40 + 30 + 1);
    expect({ code: againEnd.code, stderr: againEnd.stderr, bytes: againEnd.bytes }).toEqual({ code: 0, stderr: '', bytes: (total - from + 1) * block });
    for (let i = 0; i < total - from + 1; i++) {
      expect(againEnd.stdout[i * block]).toBe((from - 1 + i) % 251);
    }
  });
});

describe('multicast window smaller than a batch', () => {
  it('no consumer, --window 2, 200 queued chunks published in batches: exit 0, at most 2 segments kept, the newest ones, whole', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const block = 4096;
    const input = Buffer.concat(Array.from({ length: 200 }, (_, i) => Buffer.alloc(block, i % 251)));
    const result = await within(startFilebus(mc(bus, '--window', '2', '--block-size', String(block), 'producer'), { stdin: { file: writeInput(dir, 'input', input) } }).ended, 30_000, 'the producer');
    expect(result).toMatchObject({ code: 0, signal: null, stderr: '' });
    const kept = segments(bus);
    // At most the window, ending with the end marker (201); any chunk kept is whole and the right one.
    expect(kept.length).toBeLessThanOrEqual(2);
    expect(kept.at(-1)!.seq).toBe(201);
    expect(fs.statSync(kept.at(-1)!.path).size).toBe(0);
    for (const s of kept.slice(0, -1)) expect(fs.readFileSync(s.path).equals(input.subarray((s.seq - 1) * block, s.seq * block))).toBe(true);
    // Nothing of the batches was left behind as a temporary file.
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.new'))).toEqual([]);
  });
});
