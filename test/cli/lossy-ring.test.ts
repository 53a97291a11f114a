/**
 * Lossy mode's catch-up ring: a consumer that falls a few chunks behind gets
 * them all, in order, once it runs again; one that falls behind the whole
 * ring misses the oldest but never repeats or reorders; the ring is gone
 * once the producer ends.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startFilebus, waitForWatch } from '../helpers/procs.js';
import { within, until } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { listTree } from '../helpers/bus-layout.js';
import { RING_CHUNKS } from '../../src/wire/recent-chunks.js';

const tmp = useBusDir('filebus-cli-ring-');

const line = (i: number): string => `chunk ${String(i).padStart(5, '0')}\n`;

/** A producer fed one line per write from a parent that waits for each to be published (-vv). */
async function publishLines(producer: ReturnType<typeof startFilebus>, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    producer.child.stdin!.write(line(i));
    await until(() => (producer.stderr().match(/published chunk/g) ?? []).length >= i + 1, `chunk ${i} to be published`, 10_000);
  }
}

describe('lossy catch-up ring', () => {
  it('a consumer stopped while 20 chunks are published gets all of them, in order, when it runs again', async () => {
    const producer = startFilebus(['--filename', tmp.bus, '-vv', 'producer'], { stdin: 'pipe' });
    await publishLines(producer, 0, 1);
    const consumer = startFilebus(['--filename', tmp.bus, 'consumer'], { stdin: 'ignore' });
    await until(() => consumer.stdout().toString() === line(0), 'the current chunk', 15_000);
    await waitForWatch(consumer.pid);
    consumer.child.kill('SIGSTOP');
    await publishLines(producer, 1, 21);
    consumer.child.kill('SIGCONT');
    const expected = Array.from({ length: 21 }, (_, i) => line(i)).join('');
    await until(() => consumer.stdout().toString() === expected, 'all 21 chunks', 15_000);
    producer.child.stdin!.end();
    expect(await within(producer.done, 15_000, 'the producer')).toEqual({ code: 0, signal: null });
    await new Promise((r) => setTimeout(r, 200));
    expect(consumer.stdout().toString()).toBe(expected);
    // The ring went with the producer; FILE keeps the newest chunk.
    expect(listTree(tmp.dir)).toEqual(['bus', 'bus.lock']);
    expect(fs.readFileSync(tmp.bus, 'utf8')).toBe(line(20));
  }, 60_000);

  it('a consumer stopped past the whole ring misses the oldest chunks, never repeats or reorders, and ends on the newest', async () => {
    const total = RING_CHUNKS * 2 + 10;
    const producer = startFilebus(['--filename', tmp.bus, '-vv', 'producer'], { stdin: 'pipe' });
    await publishLines(producer, 0, 1);
    const consumer = startFilebus(['--filename', tmp.bus, 'consumer'], { stdin: 'ignore' });
    await until(() => consumer.stdout().toString() === line(0), 'the current chunk', 15_000);
    await waitForWatch(consumer.pid);
    consumer.child.kill('SIGSTOP');
    await publishLines(producer, 1, total);
    consumer.child.kill('SIGCONT');
    await until(() => consumer.stdout().toString().endsWith(line(total - 1)), 'the newest chunk', 15_000);
    const got = consumer.stdout().toString().split('\n').filter(Boolean).map((l) => Number(l.split(' ')[1]));
    expect(got[0]).toBe(0);
    // Strictly increasing: nothing repeated, nothing out of order.
    expect(got.every((n, i) => i === 0 || n > got[i - 1]!)).toBe(true);
    expect(got.length).toBeLessThan(total);
    // What it did get after resuming is a run up to the newest, at least half a ring long.
    expect(got.length - 1).toBeGreaterThanOrEqual(RING_CHUNKS / 2);
    const resumed = got.slice(1);
    expect(resumed).toEqual(Array.from({ length: resumed.length }, (_, i) => total - resumed.length + i));
    producer.child.stdin!.end();
    expect(await within(producer.done, 15_000, 'the producer')).toEqual({ code: 0, signal: null });
  }, 120_000);
});
