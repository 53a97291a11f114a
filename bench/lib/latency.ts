/**
 * The latency driver: this process writes 100-byte records, each carrying
 * its send time from process.hrtime (CLOCK_MONOTONIC), into a pipeline's
 * input at a steady rate, and its sinks read them back from every output,
 * so both ends use one clock. Latency is read time minus send time.
 */
import type { Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { now, waitUntil } from './procs.js';
import { latencyRecord, type LatencyParser } from './sinks.js';
import { percentiles, type Percentiles } from './stats.js';

export interface LatencyResult {
  readonly sent: number;
  /** Per output, in ms. */
  readonly perOutput: Percentiles[];
  /** All outputs' samples together, in ms. */
  readonly pooled: Percentiles;
  /** Per output: measured records never received. */
  readonly missed: number[];
  readonly corrupt: number;
  readonly duplicates: number;
  /** Warm-up records sent before measuring. */
  readonly warmup: number;
}

export interface DriveOptions {
  readonly messages: number;
  readonly perSecond: number;
  /** Lossless pipelines must deliver every record; lossy ones may miss some. */
  readonly lossless: boolean;
}

/**
 * Warm-up first: records marked W every period until every output has seen
 * one (so every reader is in place), then ten more; a lossless pipeline is
 * drained of them before measuring. Then `messages` measured records, one
 * every 1/perSecond s, each stamped the moment before it is written.
 */
export async function driveLatency(input: Writable, parsers: readonly LatencyParser[], o: DriveOptions): Promise<LatencyResult> {
  const periodMs = 1000 / o.perSecond;
  let warm = 0;
  const send = (kind: 'L' | 'W', seq: number): void => {
    input.write(latencyRecord(kind, seq, now()));
  };
  const warmDeadline = Date.now() + 30_000;
  while (!parsers.every((p) => p.warmSeen > 0)) {
    if (Date.now() > warmDeadline) {
      throw new Error(`no output received a warm-up record in 30 s (${parsers.filter((p) => p.warmSeen > 0).length}/${parsers.length} did)`);
    }
    send('W', warm++);
    await delay(periodMs);
  }
  for (let i = 0; i < 10; i++) {
    send('W', warm++);
    await delay(periodMs);
  }
  if (o.lossless) {
    const drained = await waitUntil(() => parsers.every((p) => p.warmSeen >= warm), 30_000, 2);
    if (!drained) throw new Error('warm-up records not all delivered within 30 s');
  } else {
    await delay(100);
  }

  const start = now() + BigInt(Math.round(periodMs * 1e6));
  for (let seq = 0; seq < o.messages; seq++) {
    const due = start + BigInt(Math.round(seq * periodMs * 1e6));
    const aheadMs = Number(due - now()) / 1e6;
    if (aheadMs > 0) await delay(aheadMs);
    send('L', seq);
  }
  const all = (): boolean => parsers.every((p) => p.measured >= o.messages);
  if (o.lossless) await waitUntil(all, 30_000, 2);
  else await waitUntil(all, 1_000, 5);

  const perOutput = parsers.map((p) => percentiles([...p.latencyNs.values()].map((ns) => ns / 1e6)));
  const pooled = percentiles(parsers.flatMap((p) => [...p.latencyNs.values()].map((ns) => ns / 1e6)));
  return {
    sent: o.messages,
    perOutput,
    pooled,
    missed: parsers.map((p) => o.messages - p.measured),
    corrupt: parsers.reduce((s, p) => s + p.corrupt, 0),
    duplicates: parsers.reduce((s, p) => s + p.duplicates, 0),
    warmup: warm,
  };
}
