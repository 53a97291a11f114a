/**
 * Measures back-pressure throughput and small-message latency of the
 * reference filebus and of ours, on the same machine, side by side.
 *
 *   FILEBUS_REFERENCE=$(test/interop/setup-reference.sh) npx tsx test/interop/measure.ts [--quick]
 *
 * Throughput: a file of random bytes through one producer and one consumer in
 * back-pressure mode, timed from the consumer's first byte to its exit at the
 * end marker (start-up excluded), and also end to end. Latency: with both
 * sides idle, the time from writing a 16-byte message into the producer's
 * stdin to its arrival on the consumer's stdout; the median of N messages.
 * Our side runs from dist/ (build first).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { killAll } from '../helpers/procs.js';
import { OURS, referenceImpl, startBus, type Impl } from './bus-process.js';

const REFERENCE = process.env.FILEBUS_REFERENCE;
if (!REFERENCE) {
  console.error('set FILEBUS_REFERENCE to a reference filebus launcher (see test/interop/setup-reference.sh)');
  process.exit(2);
}
const REF = referenceImpl(REFERENCE);
const QUICK = process.argv.includes('--quick');
const MiB = 1 << 20;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'filebus-measure-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));

function inputFile(size: number): string {
  const file = path.join(work, `input-${size}`);
  if (!fs.existsSync(file)) fs.writeFileSync(file, randomBytes(size));
  return file;
}

const sha = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

async function throughput(producer: Impl, consumer: Impl, size: number, blockSize: number) {
  const dir = fs.mkdtempSync(path.join(work, 'bus-'));
  const bus = path.join(dir, 'bus');
  const input = inputFile(size);
  const c = startBus(consumer, 'consumer', ['--back-pressure', '--filename', bus]);
  await delay(1000); // the consumer is up and polling
  let first: number | undefined;
  c.child.stdout!.once('data', () => { first = performance.now(); });
  const start = performance.now();
  const p = startBus(producer, 'producer', ['--back-pressure', '--block-size', String(blockSize), '--filename', bus], { stdinFile: input });
  const [pExit, cExit] = await Promise.all([p.ended, c.ended]);
  const end = performance.now();
  const ok = pExit.code === 0 && cExit.code === 0 && cExit.stdout.length === size &&
    createHash('sha256').update(cExit.stdout).digest('hex') === sha(input);
  fs.rmSync(dir, { recursive: true, force: true });
  const firstChunk = Math.min(blockSize, size);
  return {
    ok,
    steadyMBps: (size - firstChunk) / 1e6 / (((end - (first ?? start)) / 1000) || Infinity),
    endToEndMBps: size / 1e6 / ((end - start) / 1000),
    seconds: (end - start) / 1000,
  };
}

async function latency(producer: Impl, consumer: Impl, mode: 'lossy' | 'back-pressure', samples: number) {
  const dir = fs.mkdtempSync(path.join(work, 'bus-'));
  const bus = path.join(dir, 'bus');
  const flags = mode === 'back-pressure' ? ['--back-pressure'] : [];
  const c = startBus(consumer, 'consumer', [...flags, '--filename', bus]);
  const p = startBus(producer, 'producer', [...flags, '--filename', bus]);
  let received = 0;
  let waiter: (() => void) | undefined;
  let want = 0;
  c.child.stdout!.on('data', (d: Buffer) => {
    received += d.length;
    if (waiter && received >= want) { const w = waiter; waiter = undefined; w(); }
  });
  const send = async (message: Buffer): Promise<number> => {
    want = received + message.length;
    const arrived = new Promise<void>((resolve) => { waiter = resolve; });
    const t0 = performance.now();
    p.child.stdin!.write(message);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no delivery within 10 s (${producer.name} -> ${consumer.name}, ${mode})`)), 10_000);
    });
    try {
      await Promise.race([arrived, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return performance.now() - t0;
  };
  await send(randomBytes(16)); // warm-up: both sides are up
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    await delay(300); // idle in between, so messages never share a chunk
    times.push(await send(randomBytes(16)));
  }
  p.child.stdin!.end();
  await killAll();
  fs.rmSync(dir, { recursive: true, force: true });
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!;
  return { median: at(0.5), p10: at(0.1), p90: at(0.9) };
}

const pairs: Array<[Impl, Impl]> = [[REF, REF], [OURS, OURS], [REF, OURS], [OURS, REF]];
const label = (p: Impl, c: Impl) => `${p.name} -> ${c.name}`.padEnd(22);
const load = () => os.loadavg().map((l) => l.toFixed(1)).join(' ');

console.log(`filebus measurements on ${os.cpus().length} CPUs, ${os.tmpdir()}; load average at start ${load()}`);
console.log('\nback-pressure throughput (MB/s = 10^6 bytes/s; steady = first byte to end marker)');
const plans: Array<{ block: number; size: (p: Impl, c: Impl) => number }> = [
  // The reference moves one chunk per ~0.1 s poll: 4 KiB blocks run at ~0.04 MB/s,
  // so 64 MiB would take half an hour; 1 MiB tells the same story.
  { block: 4096, size: (p, c) => (p === REF || c === REF ? 1 : QUICK ? 8 : 64) * MiB },
  { block: 4 * MiB, size: () => (QUICK ? 16 : 64) * MiB },
];
for (const { block, size } of plans) {
  for (const [p, c] of pairs) {
    const bytes = size(p, c);
    const r = await throughput(p, c, bytes, block);
    console.log(`  ${label(p, c)} block ${String(block / 1024).padStart(4)} KiB, ${String(bytes / MiB).padStart(2)} MiB: ` +
      `steady ${r.steadyMBps.toFixed(2).padStart(7)} MB/s, end to end ${r.endToEndMBps.toFixed(2).padStart(7)} MB/s ` +
      `(${r.seconds.toFixed(1)} s)${r.ok ? '' : '  DATA MISMATCH OR BAD EXIT'}  [load ${load()}]`);
  }
}

const samples = QUICK ? 10 : 30;
console.log(`\nsmall-message latency (16 bytes, ${samples} messages 0.3 s apart; ms)`);
for (const mode of ['lossy', 'back-pressure'] as const) {
  for (const [p, c] of pairs) {
    const r = await latency(p, c, mode, samples);
    console.log(`  ${mode.padEnd(13)} ${label(p, c)} median ${r.median.toFixed(1).padStart(6)}  p10 ${r.p10.toFixed(1).padStart(6)}  p90 ${r.p90.toFixed(1).padStart(6)}  [load ${load()}]`);
  }
}
await killAll();
