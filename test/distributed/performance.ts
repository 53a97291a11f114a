/**
 * A-to-B figures for the distributed suite: throughput of a stream, and the
 * delay of small messages, producer through mount A, consumer through
 * mount B, with the real CLI. One machine plays both hosts, so there is no
 * network latency in these numbers: they show what filebus and the GlusterFS
 * client add (polling, metadata round trips to the brick).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { kill, mounts, sleep, start, type Mode } from './harness.js';

const MiB = 1024 * 1024;

function busDirs(): { A: string; B: string; cleanup: () => void } {
  const m = mounts();
  if (!m) throw new Error('FILEBUS_MOUNT_A and FILEBUS_MOUNT_B must be set (test/distributed/setup.sh)');
  const name = `perf-${process.pid}-${Date.now()}`;
  fs.mkdirSync(path.join(m.A, name));
  return { A: path.join(m.A, name, 'bus'), B: path.join(m.B, name, 'bus'), cleanup: () => fs.rmSync(path.join(m.A, name), { recursive: true, force: true }) };
}

function modeFlags(mode: Mode): string[] {
  return mode === 'lossy' ? [] : [`--${mode}`];
}

export interface Throughput {
  mode: Mode;
  bytes: number;
  seconds: number;
  mibPerSecond: number;
  exact: boolean;
}

/** `size` random bytes from a file through a producer on A to one consumer on B (default flags), timed from the producer's start to the consumer's exit. */
export async function measureThroughput(mode: Exclude<Mode, 'lossy'>, size: number, flags: string[] = []): Promise<Throughput> {
  const bus = busDirs();
  const input = randomBytes(size);
  const inputFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'filebus-perf-')), 'input');
  fs.writeFileSync(inputFile, input);
  try {
    const consumer = start(['--filename', bus.B, ...modeFlags(mode), ...flags, 'consumer'], 'pipe');
    consumer.proc.stdin!.end();
    await sleep(1000);
    const fd = fs.openSync(inputFile, 'r');
    const t0 = performance.now();
    const producer = start(['--filename', bus.A, ...modeFlags(mode), ...flags, 'producer'], { fd });
    fs.closeSync(fd);
    const timer = setTimeout(() => { kill(consumer); kill(producer); }, 120_000);
    await consumer.proc.done;
    const seconds = (performance.now() - t0) / 1000;
    await producer.proc.done;
    clearTimeout(timer);
    return { mode, bytes: size, seconds, mibPerSecond: size / MiB / seconds, exact: consumer.proc.stdout().equals(input) };
  } finally {
    fs.rmSync(path.dirname(inputFile), { recursive: true, force: true });
    bus.cleanup();
  }
}

export interface Latency {
  mode: Mode;
  sleepInterval: number;
  sent: number;
  received: number;
  p50: number;
  p99: number;
  max: number;
}

/**
 * Sends `count` 64-byte messages, one every `everyMs`, into a producer on A
 * and times each one's arrival on the stdout of a consumer on B (watching
 * with its default, which polls on GlusterFS). Both ends are this process,
 * so one clock measures both.
 */
export async function measureLatency(mode: Exclude<Mode, 'back-pressure'>, sleepInterval: number, count = 100, everyMs = 20): Promise<Latency> {
  const bus = busDirs();
  const interval = ['--sleep-interval', String(sleepInterval)];
  try {
    const consumer = start(['--filename', bus.B, ...modeFlags(mode), ...interval, 'consumer'], 'pipe');
    consumer.proc.stdin!.end();
    const arrived = new Map<number, number>();
    let pending = '';
    consumer.proc.child.stdout!.on('data', (d: Buffer) => {
      const now = performance.now();
      pending += d.toString('latin1');
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const seq = Number(pending.slice(0, 8));
        if (!arrived.has(seq)) arrived.set(seq, now);
        pending = pending.slice(nl + 1);
      }
    });
    await sleep(1000);
    const producer = start(['-v', '--filename', bus.A, ...modeFlags(mode), ...interval, 'producer'], 'pipe');
    const ready = Date.now() + 15_000;
    while (!producer.proc.stderr().includes('bus on') && Date.now() < ready) await sleep(10);
    const sent = new Map<number, number>();
    for (let seq = 0; seq < count; seq++) {
      sent.set(seq, performance.now());
      producer.proc.stdin!.write(`${String(seq).padStart(8, '0')} ${'x'.repeat(54)}\n`);
      await sleep(everyMs);
    }
    // Let the last message arrive before ending (a lossy consumer never ends on its own).
    await sleep(Math.max(1000, 5 * sleepInterval * 1000));
    producer.proc.stdin!.end();
    await producer.proc.done;
    if (mode === 'lossy') kill(consumer);
    const timer = setTimeout(() => kill(consumer), 30_000);
    await consumer.proc.done;
    clearTimeout(timer);
    const delays = [...arrived].map(([seq, at]) => at - sent.get(seq)!).sort((a, b) => a - b);
    const pick = (q: number): number => delays[Math.min(delays.length - 1, Math.floor(q * delays.length))] ?? NaN;
    return { mode, sleepInterval, sent: count, received: delays.length, p50: pick(0.5), p99: pick(0.99), max: delays.at(-1) ?? NaN };
  } finally {
    bus.cleanup();
  }
}

export function describeThroughput(t: Throughput): string {
  return `throughput A->B ${t.mode}: ${(t.bytes / MiB).toFixed(0)} MiB in ${t.seconds.toFixed(2)} s = ${t.mibPerSecond.toFixed(1)} MiB/s (exact: ${t.exact})`;
}

export function describeLatency(l: Latency): string {
  return `latency A->B ${l.mode} --sleep-interval ${l.sleepInterval}: p50 ${l.p50.toFixed(1)} ms, p99 ${l.p99.toFixed(1)} ms, max ${l.max.toFixed(1)} ms (${l.received}/${l.sent} messages)`;
}
