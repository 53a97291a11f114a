/**
 * The producer-crash drill, shared by the three producer-crash-*.test.ts
 * files (one per mode, so vitest runs them side by side).
 *
 * Consumers run for the whole drill. RUNS producers are started one after
 * another, each fed its own tagged input from a file (so its chunks are
 * exactly the input's blocks), and each is SIGKILLed at a random instant:
 * a fifth during start-up (anywhere from spawn to the usual time of its
 * first chunk), the rest a random 0-30 ms after its first chunk was seen,
 * i.e. while publishing. A last producer then runs to the end.
 *
 * After every kill: no stale lock (lossy, multicast: nobody holds FILE.lock),
 * no published segment partial or failing its checksum (multicast). When the
 * next producer's first chunk is seen: it got there without waiting on
 * anything the dead one left, and no temporary file of a dead producer is
 * left (the new one swept them). At the end, every consumer's output is
 * checked chunk by chunk against the mode's guarantee.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { startFilebus, killAll, type Proc } from '../helpers/procs.js';
import { within, until, delay } from '../helpers/wait.js';
import { segments, readCursor, tempFiles, tempPid, lockState, segmentIntact, cursorIds } from '../helpers/bus-layout.js';
import { chunkBytes, chunks as makeChunks, checkChunk, ChunkReader, type Format, type ChunkRef } from '../helpers/records.js';
import { RUNS, sigkill, writeResults, rng, seedFor, median } from '../helpers/reliability.js';

export type Mode = 'lossy' | 'back-pressure' | 'multicast';

const FORMAT: Format = { recordSize: 128, perChunk: 4 }; // 512-byte chunks
/** Chunks in each killed producer's input: far more than it can publish before its kill. */
const INPUT_CHUNKS = 2000;
/** Chunks of the last producer, which runs to the end. */
const FINAL_CHUNKS = 50;
const MAX_STREAM_KILL_MS = 30;
const STARTUP_SHARE = 0.2;
/** A new producer that takes longer than this to publish its first chunk counts as blocked. */
const PROCEED_LIMIT_MS = 20_000;

const PREFIX: Record<Mode, string> = { lossy: 'L', 'back-pressure': 'B', multicast: 'M' };

function tagOf(mode: Mode, run: number): string {
  return `${PREFIX[mode]}${String(run).padStart(5, '0')}`;
}

function runOf(tag: string): number {
  return Number(tag.slice(1));
}

export async function producerCrashDrill(mode: Mode): Promise<void> {
  const seed = seedFor(`producer-crash-${mode}`);
  const random = rng(seed);
  const dir = tempDir(`filebus-reliability-pc-${mode}-`);
  const bus = path.join(dir, 'bus');
  const size = chunkBytes(FORMAT);
  const modeArgs = mode === 'lossy' ? [] : mode === 'back-pressure' ? ['--back-pressure'] : ['--multicast'];
  const common = ['--filename', bus, ...modeArgs];
  const t0 = Date.now();

  try {
    // ------------------------------------------------------------ consumers
    const firstSeen = new Map<number, number>(); // run -> when a consumer first emitted one of its chunks
    const onChunk = (ref: ChunkRef): void => {
      const run = runOf(ref.tag);
      if (!firstSeen.has(run)) firstSeen.set(run, Date.now());
    };
    const consumerArgs: string[][] = mode === 'lossy'
      ? [[...common, 'consumer'], [...common, '--no-file-monitoring', '--sleep-interval', '0.005', 'consumer']]
      : mode === 'back-pressure'
        ? [[...common, 'consumer'], [...common, 'consumer']]
        : [[...common, '--name', 'keeper', 'consumer'], [...common, 'consumer']];
    const readers = consumerArgs.map(() => new ChunkReader(FORMAT, onChunk));
    const consumers: Proc[] = consumerArgs.map((args, i) => startFilebus(args, { stdout: (d) => readers[i]!.push(d) }));
    if (mode === 'multicast') {
      await until(() => cursorIds(bus).length === 2, 'both multicast consumers to register', 60_000);
    }

    // ------------------------------------------------------------- producers
    /** The tag at the head of FILE (lossy, multicast: FILE holds the newest chunk). */
    const headTag = (): string | undefined => {
      if (mode === 'back-pressure') return undefined;
      try {
        const fd = fs.openSync(bus, 'r');
        try {
          const b = Buffer.alloc(6);
          return fs.readSync(fd, b, 0, 6, 0) === 6 ? b.toString('latin1') : undefined;
        } finally {
          fs.closeSync(fd);
        }
      } catch {
        return undefined;
      }
    };
    const seenRun = (run: number): boolean => firstSeen.has(run) || headTag() === tagOf(mode, run);

    const figures = {
      kills: 0,
      killsDuringStartup: 0,
      killsWhilePublishing: 0,
      completedBeforeKill: 0,
      leftoverTempFilesAfterKills: 0,
      staleLockAfterKill: 0,
      segmentsVerified: 0,
      timeToFirstChunkMs: [] as number[],
    };
    const verifiedSegments = new Set<number>();
    const checkSegments = (ended = false): void => {
      const segs = segments(bus);
      for (const s of ended ? segs.slice(0, -1) : segs) {
        if (verifiedSegments.has(s.seq)) continue;
        let data: Buffer;
        try { data = fs.readFileSync(s.path); } catch { continue; } // deleted by retention meanwhile
        // Whole, and true to its checksum: a killed producer never exposes a partial segment.
        expect(data.length, `segment ${s.name}`).toBe(size);
        checkChunk(data, FORMAT);
        expect(segmentIntact(s, data), `checksum of ${s.name}`).toBe(true);
        verifiedSegments.add(s.seq);
        figures.segmentsVerified += 1;
      }
    };

    let run = 0;
    const inputFile = (r: number): string => path.join(dir, `input-${r}`);
    while (figures.kills < RUNS) {
      const tag = tagOf(mode, run);
      fs.writeFileSync(inputFile(run), makeChunks(FORMAT, tag, INPUT_CHUNKS));
      const producer = startFilebus([...common, '--block-size', String(size), 'producer'], { stdin: { file: inputFile(run) } });
      const startup = random() < STARTUP_SHARE;
      if (startup) {
        const typical = median(figures.timeToFirstChunkMs);
        await delay(Math.floor(random() * (Number.isNaN(typical) ? 300 : typical)));
      } else {
        await until(() => seenRun(run) || !producer.running(), `producer ${run}'s first chunk`, PROCEED_LIMIT_MS, { everyMs: 1 });
        figures.timeToFirstChunkMs.push(Date.now() - producer.startedAt);
        // The killed producers before it left nothing this one had to wait for or clear by hand.
        const stale = tempFiles(bus).filter((n) => tempPid(bus, n) !== producer.pid);
        expect(stale, `temporary files of dead producers when producer ${run} published`).toEqual([]);
        await delay(Math.floor(random() * MAX_STREAM_KILL_MS));
      }
      const exit = await sigkill(producer);
      fs.rmSync(inputFile(run), { force: true });
      if (exit.signal !== 'SIGKILL') {
        // It reached the end of its input before the kill landed.
        if (mode !== 'lossy') throw new Error(`producer ${run} finished (${JSON.stringify(exit)}) before it could be killed: ${producer.stderr()}`);
        figures.completedBeforeKill += 1;
      } else {
        figures.kills += 1;
        if (startup) figures.killsDuringStartup += 1;
        else figures.killsWhilePublishing += 1;
      }
      expect(producer.stderr(), `producer ${run} stderr`).toBe('');
      if (mode !== 'back-pressure') {
        // Consumers of these modes do not hold the lock; the kernel dropped the dead producer's.
        if (lockState(`${bus}.lock`) === 'held') figures.staleLockAfterKill += 1;
        expect(lockState(`${bus}.lock`), `FILE.lock after killing producer ${run}`).not.toBe('held');
      }
      figures.leftoverTempFilesAfterKills += tempFiles(bus).filter((n) => tempPid(bus, n) === producer.pid).length;
      if (mode === 'multicast') checkSegments();
      run += 1;
    }

    // ---------------------------------------------------- the last producer
    const finalRun = run;
    const finalTag = tagOf(mode, finalRun);
    fs.writeFileSync(inputFile(finalRun), makeChunks(FORMAT, finalTag, FINAL_CHUNKS));
    const last = startFilebus([...common, '--block-size', String(size), 'producer'], { stdin: { file: inputFile(finalRun) } });
    const lastExit = await within(last.done, 120_000, 'the last producer');
    expect({ ...lastExit, stderr: last.stderr() }).toEqual({ code: 0, signal: null, stderr: '' });
    expect(tempFiles(bus), 'temporary files after the last producer').toEqual([]);

    // Each consumer ends as its mode says.
    if (mode === 'lossy') {
      // Consumers never end on their own; the newest chunk is always observable.
      for (const [i, r] of readers.entries()) {
        await until(() => r.chunks.at(-1)?.tag === finalTag && r.chunks.at(-1)?.index === FINAL_CHUNKS - 1,
          `lossy consumer ${i} to emit the newest chunk`, 30_000, { everyMs: 5 });
      }
      for (const c of consumers) await sigkill(c);
    } else if (mode === 'back-pressure') {
      // Exactly one consumer takes the end marker and exits 0; FILE is then gone, nothing is in flight.
      const first = await within(Promise.race(consumers.map((c, i) => c.exited.then((e) => ({ i, e })))), 60_000, 'a consumer to take the end marker');
      expect(first.e).toEqual({ code: 0, signal: null });
      await until(() => !fs.existsSync(bus), 'FILE to be taken', 30_000, { everyMs: 5 });
      const other = consumers[1 - first.i]!;
      await delay(200);
      expect(other.running(), 'the other consumer keeps waiting for a next stream').toBe(true);
      await sigkill(other);
    } else {
      for (const [i, c] of consumers.entries()) {
        expect(await within(c.exited, 60_000, `multicast consumer ${i}`)).toEqual({ code: 0, signal: null });
      }
    }
    await Promise.all(consumers.map((c) => within(c.done, 30_000, 'consumer output')));
    for (const [i, c] of consumers.entries()) expect(c.stderr(), `consumer ${i} stderr`).toBe('');
    for (const [i, r] of readers.entries()) {
      expect(r.error?.message, `consumer ${i} emitted only whole, intact chunks`).toBeUndefined();
      expect(r.pending.length, `consumer ${i} ended inside a chunk`).toBe(0);
    }

    // --------------------------------------------------------- the verdict
    let lost = 0;
    let repeated = 0;
    const published = new Map<number, number>(); // run -> chunks delivered (lossless modes)
    if (mode === 'lossy') {
      // Whole chunks, each at most once, in publishing order; any may be missed.
      for (const r of readers) {
        const keys = r.chunks.map((c) => runOf(c.tag) * 1e6 + c.index);
        const increasing = keys.every((k, i) => i === 0 || k > keys[i - 1]!);
        expect(increasing, 'lossy chunks in publishing order, none twice').toBe(true);
      }
    } else if (mode === 'back-pressure') {
      // Between them, the consumers emitted of each producer exactly a prefix of its chunks, each once.
      const byRun = new Map<number, number[]>();
      for (const r of readers) {
        const keys = r.chunks.map((c) => runOf(c.tag) * 1e6 + c.index);
        expect(keys.every((k, i) => i === 0 || k > keys[i - 1]!), 'each consumer receives its share in order').toBe(true);
        for (const c of r.chunks) {
          let list = byRun.get(runOf(c.tag));
          if (!list) byRun.set(runOf(c.tag), (list = []));
          list.push(c.index);
        }
      }
      for (const [r, list] of byRun) {
        list.sort((a, b) => a - b);
        const dups = list.filter((v, i) => i > 0 && v === list[i - 1]).length;
        repeated += dups;
        const distinct = [...new Set(list)];
        const gaps = distinct.length === 0 ? 0 : distinct.at(-1)! + 1 - distinct.length;
        lost += gaps;
        expect({ run: r, dups, gaps }, `producer ${r}'s chunks`).toEqual({ run: r, dups: 0, gaps: 0 });
        published.set(r, distinct.length);
      }
      expect(published.get(finalRun), 'the last producer delivered everything').toBe(FINAL_CHUNKS);
    } else {
      // Every consumer emitted exactly the published segments, in order: of each producer a prefix.
      const segs = segments(bus);
      const end = segs.at(-1)!;
      expect(fs.statSync(end.path).size, 'the newest segment is the end marker').toBe(0);
      for (const [i, r] of readers.entries()) {
        expect(r.chunks.length, `consumer ${i}: one chunk per segment before the end marker`).toBe(end.seq - 1);
        let prevRun = -1;
        let nextIndex = 0;
        for (const c of r.chunks) {
          const cr = runOf(c.tag);
          if (cr !== prevRun) {
            expect(cr > prevRun, `consumer ${i}: producers in order`).toBe(true);
            prevRun = cr;
            nextIndex = 0;
          }
          if (c.index !== nextIndex) {
            lost += Math.max(0, c.index - nextIndex);
            repeated += c.index < nextIndex ? 1 : 0;
          }
          expect(c.index, `consumer ${i}: producer ${cr}'s chunks are a prefix of its input`).toBe(nextIndex);
          nextIndex += 1;
          published.set(cr, nextIndex);
        }
        expect(r.chunks, 'both consumers emitted the same stream').toEqual(readers[0]!.chunks);
      }
      // What is still retained is byte for byte what the consumers emitted at those positions.
      for (const s of segs.slice(0, -1)) {
        const ref = checkChunk(fs.readFileSync(s.path), FORMAT);
        expect(ref, `segment ${s.seq}`).toEqual(readers[0]!.chunks[s.seq - 1]);
      }
      checkSegments(true);
      expect(published.get(finalRun), 'the last producer delivered everything').toBe(FINAL_CHUNKS);
      expect(readCursor(path.join(`${bus}.consumers`, 'keeper.cursor')), 'the named consumer is past the end marker').toBe(end.seq + 1);
      expect(fs.readdirSync(`${bus}.consumers`), 'the anonymous cursor is gone').toEqual(['keeper.cursor']);
      expect(fs.readdirSync(`${bus}.producers`), 'dead producers hold no registration after the stream ended').toEqual([]);
    }
    expect(lost, 'chunks lost').toBe(0);
    expect(repeated, 'chunks repeated').toBe(0);
    expect(lockState(`${bus}.lock`), 'FILE.lock at the end').not.toBe('held');
    for (const t of figures.timeToFirstChunkMs) expect(t).toBeLessThan(PROCEED_LIMIT_MS);

    const chunksChecked = readers.reduce((n, r) => n + r.chunks.length, 0);
    writeResults(`producer-crash/${mode}`, {
      seed,
      runs: run + 1,
      faultsInjected: figures.kills,
      killsDuringStartup: figures.killsDuringStartup,
      killsWhilePublishing: figures.killsWhilePublishing,
      producersThatFinishedBeforeTheirKill: figures.completedBeforeKill,
      chunksPublishedByKilledProducers: mode === 'lossy' ? undefined : [...published.entries()].filter(([r]) => r !== finalRun).reduce((n, [, c]) => n + c, 0),
      chunksChecked,
      chunksLost: lost,
      chunksRepeated: repeated,
      segmentsVerifiedAfterKills: mode === 'multicast' ? figures.segmentsVerified : undefined,
      leftoverTempFilesFoundAfterKills: figures.leftoverTempFilesAfterKills,
      leftoverTempFilesAfterNextStart: 0,
      staleLocks: figures.staleLockAfterKill,
      newProducerFirstChunkMs: {
        median: median(figures.timeToFirstChunkMs),
        max: Math.max(...figures.timeToFirstChunkMs),
      },
      seconds: Math.round((Date.now() - t0) / 100) / 10,
    });
  } finally {
    await killAll();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
