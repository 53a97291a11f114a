/**
 * Load: 4 producers and 16 consumers on one multicast bus for 30 seconds
 * (RELIABILITY_LOAD_SECONDS overrides it). Each producer is fed whole
 * 4096-byte blocks through its own FIFO at a steady pace. Every consumer
 * must receive every chunk of every producer exactly once, each producer's
 * in order, whole; the last producer to finish ends the stream and every
 * consumer exits 0. VmRSS of all 20 filebus processes is sampled from
 * /proc/PID/status: the maximum over the last third of the run must not be
 * much above the maximum over the first third (< 1.5x + 10 MB).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { startFilebus, killAll, type Proc } from '../helpers/procs.js';
import { within, until, delay } from '../helpers/wait.js';
import { cursorIds } from '../helpers/bus-layout.js';
import { chunkBytes, chunk, ChunkReader, type Format } from '../helpers/records.js';
import { BlockFeeder, vmRss, writeResults } from '../helpers/reliability.js';

const SECONDS = Number(process.env.RELIABILITY_LOAD_SECONDS ?? 30);
const PRODUCERS = 4;
const CONSUMERS = 16;
/** Blocks per second per producer. */
const RATE = 30;
const FORMAT: Format = { recordSize: 256, perChunk: 16 }; // 4096 bytes: one atomic pipe write
const MB = 1024 * 1024;

let dir: string;

afterAll(async () => {
  await killAll();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('load', () => {
  it(`${PRODUCERS} producers and ${CONSUMERS} consumers on a multicast bus for ${SECONDS} s: nothing lost, memory flat`, async () => {
    dir = tempDir('filebus-reliability-load-');
    const bus = path.join(dir, 'bus');
    const common = ['--filename', bus, '--multicast'];
    const tags = Array.from({ length: PRODUCERS }, (_, i) => `P0000${i}`);

    // Consumers first, all registered before anything is published.
    const problems: string[] = [];
    const expectedNext = Array.from({ length: CONSUMERS }, () => new Map(tags.map((t) => [t, 0])));
    const readers = Array.from({ length: CONSUMERS }, (_, i) => new ChunkReader(FORMAT, (ref) => {
      const next = expectedNext[i]!.get(ref.tag);
      if (next === undefined) problems.push(`consumer ${i}: chunk of unknown stream ${ref.tag}`);
      else if (ref.index !== next) problems.push(`consumer ${i}: ${ref.tag} chunk ${ref.index}, expected ${next}`);
      expectedNext[i]!.set(ref.tag, ref.index + 1);
    }));
    const consumers: Proc[] = readers.map((r) => startFilebus([...common, 'consumer'], { stdout: (d) => r.push(d) }));
    await until(() => cursorIds(bus).length === CONSUMERS,
      'every consumer to register', 120_000, { everyMs: 20 });

    const feeders = tags.map((t, i) => new BlockFeeder(dir, `p${i}.fifo`, (k) => chunk(FORMAT, t, k)));
    const producers = feeders.map((f) => {
      const p = startFilebus([...common, '--block-size', String(chunkBytes(FORMAT)), 'producer'], { stdin: { fd: f.readFd } });
      f.releaseReadEnd();
      return p;
    });

    // Feed at a steady pace; sample memory.
    const all = [...producers, ...consumers];
    const samples = all.map(() => [] as Array<{ t: number; rss: number }>);
    const t0 = Date.now();
    const sampler = setInterval(() => {
      const t = (Date.now() - t0) / 1000;
      all.forEach((p, i) => {
        const rss = vmRss(p.pid);
        if (rss !== undefined) samples[i]!.push({ t, rss });
      });
    }, 250);
    for (const f of feeders) f.start(() => Math.floor(((Date.now() - t0) / 1000) * RATE), 20);
    await delay(SECONDS * 1000);
    for (const f of feeders) f.stop();
    clearInterval(sampler);

    // End of input: the producers finish, the last one ends the stream.
    for (const f of feeders) f.close();
    for (const [i, p] of producers.entries()) {
      const exit = await within(p.done, 120_000, `producer ${i} to finish`);
      expect({ ...exit, stderr: p.stderr() }, `producer ${i}`).toEqual({ code: 0, signal: null, stderr: '' });
    }
    for (const [i, c] of consumers.entries()) {
      const exit = await within(c.done, 120_000, `consumer ${i} to end`);
      expect({ ...exit, stderr: c.stderr() }, `consumer ${i}`).toEqual({ code: 0, signal: null, stderr: '' });
    }

    // Nothing lost: every chunk of every producer reached every consumer once, in order.
    expect(problems.slice(0, 10)).toEqual([]);
    const fed = feeders.map((f) => f.fed);
    for (const [i, r] of readers.entries()) {
      expect(r.error?.message, `consumer ${i}`).toBeUndefined();
      expect(r.pending.length, `consumer ${i} ended inside a chunk`).toBe(0);
      expect(tags.map((t) => expectedNext[i]!.get(t)), `consumer ${i}: chunks per producer`).toEqual(fed);
    }
    const published = fed.reduce((a, b) => a + b, 0);
    expect(published, 'the bus moved').toBeGreaterThan(PRODUCERS * SECONDS);

    // Memory flat: the last third's peak against the first third's.
    let worst = { ratio: 0, pid: 0, role: '', firstMaxMB: 0, lastMaxMB: 0 };
    const verdicts = all.map((p, i) => {
      const s = samples[i]!;
      const first = s.filter((x) => x.t < SECONDS / 3).map((x) => x.rss);
      const last = s.filter((x) => x.t >= (2 * SECONDS) / 3).map((x) => x.rss);
      const firstMax = Math.max(...first);
      const lastMax = Math.max(...last);
      const role = i < PRODUCERS ? `producer ${i}` : `consumer ${i - PRODUCERS}`;
      const ratio = lastMax / firstMax;
      if (ratio > worst.ratio) worst = { ratio, pid: p.pid, role, firstMaxMB: firstMax / MB, lastMaxMB: lastMax / MB };
      return { role, samples: s.length, firstMax, lastMax, ok: lastMax < 1.5 * firstMax + 10 * MB };
    });
    const rss = (role: 'producer' | 'consumer', which: 'firstMax' | 'lastMax'): number =>
      Math.max(...verdicts.filter((v) => v.role.startsWith(role)).map((v) => v[which])) / MB;

    writeResults('load', {
      producers: PRODUCERS,
      consumers: CONSUMERS,
      seconds: SECONDS,
      chunkBytes: chunkBytes(FORMAT),
      chunksPublished: published,
      chunksChecked: readers.reduce((n, r) => n + r.chunks.length, 0),
      chunksLost: 0,
      rssMB: {
        producersFirstThirdMax: round(rss('producer', 'firstMax')),
        producersLastThirdMax: round(rss('producer', 'lastMax')),
        consumersFirstThirdMax: round(rss('consumer', 'firstMax')),
        consumersLastThirdMax: round(rss('consumer', 'lastMax')),
        worstRatio: round(worst.ratio),
        worstProcess: worst.role,
      },
      samplesPerProcess: Math.min(...samples.map((s) => s.length)),
      // Peak RSS of all consumers (MB) per tenth of the run: the shape of any growth.
      consumersRssByTenthMB: Array.from({ length: 10 }, (_, k) => round(Math.max(...samples.slice(PRODUCERS).flatMap((s) =>
        s.filter((x) => x.t >= (k * SECONDS) / 10 && x.t < ((k + 1) * SECONDS) / 10).map((x) => x.rss))) / MB)),
      producersRssByTenthMB: Array.from({ length: 10 }, (_, k) => round(Math.max(...samples.slice(0, PRODUCERS).flatMap((s) =>
        s.filter((x) => x.t >= (k * SECONDS) / 10 && x.t < ((k + 1) * SECONDS) / 10).map((x) => x.rss))) / MB)),
    });
    for (const v of verdicts) {
      expect(v.samples, `${v.role}: RSS samples`).toBeGreaterThan(SECONDS * 2);
      expect(v.ok, `${v.role}: RSS peak ${(v.lastMax / MB).toFixed(1)} MB in the last third, ${(v.firstMax / MB).toFixed(1)} MB in the first`).toBe(true);
    }
  }, 600_000);
});

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
