/**
 * The consumer-crash drill, shared by consumer-crash-back-pressure.test.ts
 * and consumer-crash-multicast.test.ts.
 *
 * One producer runs for the whole drill, fed from a file of 64 KiB blocks
 * (so its chunks are exactly the blocks, each larger than what a socket
 * takes in one piece: a consumer killed inside a write can have got out
 * only part of a chunk). A chain of RUNS consumers (back-pressure; or
 * restarts of one named multicast consumer) is SIGKILLed one after another
 * at random instants:
 * - during start-up (from spawn to about when output usually begins);
 * - while flowing: once a random number of bytes (up to two chunks) has come out;
 * - while blocked writing: its stdout is no longer read, so it stops inside
 *   a write once the socket buffer is full, and is killed 20-60 ms after its
 *   first output; what it had written is read after its death.
 * After each kill the state on disk is checked against the consumer's output:
 * back-pressure: the chunk being written is left taken (`.taken`, starting
 * with the bytes the dead consumer got out), or the one it last wrote when
 * it died before letting go of it; FILE holds the chunk after that;
 * multicast: the cursor is at the chunk being written, or just past the
 * last one written. A last consumer then runs to the end of the stream.
 *
 * The chain's outputs together must be every chunk, in order, with the only
 * repeat the documented one (checkChain). In multicast an anonymous consumer
 * runs beside the chain (paced to stay a few chunks ahead of it, which in
 * turn paces the producer through the window) and must get every chunk
 * exactly once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { startFilebus, killAll, type Proc } from '../helpers/procs.js';
import { within, until, delay } from '../helpers/wait.js';
import { readCursor, cursorIds } from '../helpers/bus-layout.js';
import { chunkBytes, chunks as makeChunks, checkChunk, ChunkReader, type Format } from '../helpers/records.js';
import { RUNS, checkChain, sigkill, writeResults, rng, seedFor, median } from '../helpers/reliability.js';

export type LosslessMode = 'back-pressure' | 'multicast';

const FORMAT: Format = { recordSize: 1024, perChunk: 64 }; // 64 KiB chunks
const TAG = 'C00000';
/**
 * Chunks in the producer's input: about four times what the chain takes (a
 * killed consumer gets out up to ~5 chunks: the socket buffer holds 3; at
 * twice, the chain reached the end marker at run 195 of 200 once, on a
 * loaded machine), so the stream cannot end while the chain runs.
 */
const INPUT_CHUNKS = Math.max(200, RUNS * 20);
/** Multicast: how far the anonymous bystander may run ahead of the chain. */
const LEAD = 8;
const WINDOW = 16;

export async function consumerCrashDrill(mode: LosslessMode): Promise<void> {
  const seed = seedFor(`consumer-crash-${mode}`);
  const random = rng(seed);
  const dir = tempDir(`filebus-reliability-cc-${mode}-`);
  const bus = path.join(dir, 'bus');
  const size = chunkBytes(FORMAT);
  const modeArgs = mode === 'back-pressure' ? ['--back-pressure'] : ['--multicast'];
  const common = ['--filename', bus, ...modeArgs];
  const cursorFile = path.join(`${bus}.consumers`, 'alice.cursor');
  const consumerArgs = mode === 'multicast' ? [...common, '--name', 'alice', 'consumer'] : [...common, 'consumer'];
  const t0 = Date.now();
  let pacer: NodeJS.Timeout | undefined;

  try {
    const input = path.join(dir, 'input');
    const fd = fs.openSync(input, 'w');
    for (let c = 0; c < INPUT_CHUNKS; c += 64) fs.writeSync(fd, makeChunks(FORMAT, TAG, Math.min(64, INPUT_CHUNKS - c), c));
    fs.closeSync(fd);
    let emitted = 0; // the chain has emitted chunks 0..emitted-1 whole
    const track = (index: number): void => { if (index + 1 > emitted) emitted = index + 1; };

    // The first consumer of the chain is there before the producer (multicast:
    // registered, so the chain starts at segment 1).
    let hook: (() => void) | undefined; // called after every piece of the current chain consumer's output
    const spawnChain = (): { reader: ChunkReader; consumer: Proc } => {
      const r = new ChunkReader(FORMAT, (ref) => track(ref.index));
      return { reader: r, consumer: startFilebus(consumerArgs, { stdout: (d) => { r.push(d); hook?.(); } }) };
    };
    let { reader, consumer } = spawnChain();
    let bystander: Proc | undefined;
    let bystanderReader: ChunkReader | undefined;
    if (mode === 'multicast') {
      await until(() => fs.existsSync(cursorFile) && fs.statSync(cursorFile).size === 30, 'alice to register', 60_000);
      bystanderReader = new ChunkReader(FORMAT);
      bystander = startFilebus([...common, 'consumer'], { stdout: (d) => bystanderReader!.push(d) });
      await until(() => cursorIds(bus).length === 2, 'the bystander to register', 60_000);
      // Keep the bystander a few chunks ahead of the chain; through the window it paces the producer.
      pacer = setInterval(() => {
        if (bystanderReader!.chunks.length > emitted + LEAD) bystander!.pause();
        else bystander!.flow();
      }, 2);
    }
    const producer = startFilebus([...common, '--block-size', String(size), ...(mode === 'multicast' ? ['--window', String(WINDOW)] : []), 'producer'], { stdin: { file: input } });

    const runs: Array<{ chunks: ChunkReader['chunks']; pending: Buffer }> = [];
    const figures = { kills: 0, duringStartup: 0, whileFlowing: 0, whileBlocked: 0, midChunk: 0, firstOutputMs: [] as number[] };
    const chainNext = (): number => {
      let next = 0;
      for (const r of runs) for (const c of r.chunks) if (c.index === next) next += 1;
      return next;
    };

    for (let i = 0; i < RUNS; i++) {
      if (i > 0) ({ reader, consumer } = spawnChain());
      const c = consumer;
      const choice = random();
      if (choice < 0.2) {
        const typical = median(figures.firstOutputMs);
        await delay(Math.floor(random() * (Number.isNaN(typical) ? 300 : typical)));
        figures.duringStartup += 1;
      } else if (choice < 0.6) {
        // Killed from the data handler once a random number of bytes is out.
        const target = 1 + Math.floor(random() * 2 * size);
        const r = reader;
        await new Promise<void>((resolve) => {
          hook = () => { if (r.bytes >= target) { c.child.kill('SIGKILL'); resolve(); } };
          hook();
          void c.exited.then(() => resolve());
        });
        hook = undefined;
        figures.whileFlowing += 1;
      } else {
        await until(() => c.firstOutputAt !== undefined || !c.running(), `consumer ${i}'s first output`, 60_000, { everyMs: 1 });
        c.pause();
        await delay(20 + Math.floor(random() * 40));
        figures.whileBlocked += 1;
      }
      const exit = await sigkill(c);
      if (exit.signal !== 'SIGKILL') throw new Error(`consumer ${i} ended by itself (${JSON.stringify(exit)}), input exhausted? ${c.stderr()}`);
      if (c.firstOutputAt !== undefined) figures.firstOutputMs.push(c.firstOutputAt - c.startedAt);
      c.flow();
      await within(c.done, 30_000, `consumer ${i}'s output`);
      figures.kills += 1;
      expect(c.stderr(), `consumer ${i} stderr`).toBe('');
      expect(reader.error?.message, `consumer ${i} emitted whole, intact chunks`).toBeUndefined();
      runs.push({ chunks: reader.chunks, pending: reader.pending });
      const pending = reader.pending;
      if (pending.length > 0) figures.midChunk += 1;

      // The state left on disk matches what the dead consumer got out.
      const next = chainNext();
      if (mode === 'back-pressure') {
        // A consumer takes a chunk off FILE (renames it to a .taken name of
        // its own) before writing it out; a dead consumer's taken chunk stays
        // until the next consumer adopts it, and FILE meanwhile holds the
        // next chunk the producer published.
        let onBus: Buffer | undefined;
        try { onBus = fs.readFileSync(bus); } catch { /* taken, and the producer has not published the next yet */ }
        const taken = fs.readdirSync(dir).filter((name) => name.endsWith('.taken')).map((name) => fs.readFileSync(path.join(dir, name)));
        expect(taken.length, `after consumer ${i}: at most one taken chunk is left`).toBeLessThanOrEqual(1);
        const takenIdx = taken.length > 0 ? checkChunk(taken[0]!, FORMAT).index : undefined;
        if (pending.length > 0) {
          expect(takenIdx, `after consumer ${i}: the chunk it was writing is still on the bus, taken`).toBe(next);
          expect(taken[0]!.subarray(0, pending.length).equals(pending), 'and starts with the bytes it got out').toBe(true);
        }
        // Written out whole but not yet let go of: the documented repeat.
        if (takenIdx !== undefined) expect([next - 1, next], `after consumer ${i}: taken chunk ${takenIdx}, the chain is at ${next}`).toContain(takenIdx);
        if (onBus !== undefined) {
          const idx = checkChunk(onBus, FORMAT).index;
          if (takenIdx !== undefined) expect(idx, `after consumer ${i}: FILE holds the chunk after the taken one`).toBe(takenIdx + 1);
          else expect(idx, `after consumer ${i}: FILE holds chunk ${idx}, the chain is at ${next}`).toBe(next);
        }
      } else {
        const position = readCursor(cursorFile);
        expect(position, 'alice\'s cursor').toBeDefined();
        // Segment n holds chunk n-1: the cursor is at the chunk being written, or past the last one written.
        const atChunk = position! - 1;
        expect([next - 1, next], `after consumer ${i}: cursor at chunk ${atChunk}, the chain is at ${next}`).toContain(atChunk);
        if (pending.length > 0) expect(atChunk, 'a chunk partly written is not acknowledged').toBe(next);
      }
    }

    // The last consumer runs to the end of the stream.
    const lastReader = new ChunkReader(FORMAT, (ref) => track(ref.index));
    const last = startFilebus(consumerArgs, { stdout: (d) => lastReader.push(d) });
    const producerExit = await within(producer.done, 300_000, 'the producer to finish');
    expect({ ...producerExit, stderr: producer.stderr() }).toEqual({ code: 0, signal: null, stderr: '' });
    const lastExit = await within(last.done, 300_000, 'the last consumer to end');
    expect({ ...lastExit, stderr: last.stderr() }).toEqual({ code: 0, signal: null, stderr: '' });
    expect(lastReader.error?.message).toBeUndefined();
    runs.push({ chunks: lastReader.chunks, pending: lastReader.pending });

    // The verdict: every chunk, in order; repeats only at the documented boundary.
    const chain = checkChain(FORMAT, runs, TAG, INPUT_CHUNKS);
    let chunksChecked = chain.chunks;
    if (mode === 'multicast') {
      clearInterval(pacer);
      bystander!.flow();
      const ended = await within(bystander!.done, 60_000, 'the bystander to end');
      expect({ ...ended, stderr: bystander!.stderr() }).toEqual({ code: 0, signal: null, stderr: '' });
      expect(bystanderReader!.error?.message).toBeUndefined();
      const seen = bystanderReader!.chunks.map((ref) => ref.index);
      expect(seen.length, 'the bystander got every chunk').toBe(INPUT_CHUNKS);
      expect(seen.every((v, k) => v === k), 'the bystander got every chunk once, in order').toBe(true);
      chunksChecked += seen.length;
      // Segments 1..N, the end marker N+1; alice is past it.
      expect(readCursor(cursorFile)).toBe(INPUT_CHUNKS + 2);
      expect(fs.readdirSync(`${bus}.consumers`), 'only the named cursor remains').toEqual(['alice.cursor']);
    } else {
      expect(fs.existsSync(bus), 'FILE after the end marker was taken').toBe(false);
    }

    writeResults(`consumer-crash/${mode}`, {
      seed,
      runs: RUNS + 1,
      faultsInjected: figures.kills,
      killsDuringStartup: figures.duringStartup,
      killsWhileFlowing: figures.whileFlowing,
      killsWhileOutputBlocked: figures.whileBlocked,
      killedWithAChunkPartlyWritten: figures.midChunk,
      chunksInStream: INPUT_CHUNKS,
      chunksEmittedByKilledConsumers: runs.slice(0, -1).reduce((n, r) => n + r.chunks.length, 0),
      chunksChecked,
      chunksLost: 0,
      repeatedWhole: chain.repeatsWhole,
      repeatedAfterPrefix: chain.repeatsPrefix,
      repeatedOtherwise: 0,
      seconds: Math.round((Date.now() - t0) / 100) / 10,
    });
  } finally {
    if (pacer) clearInterval(pacer);
    await killAll();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
