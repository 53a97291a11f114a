/**
 * Case 4 (latency per mode, against one cat) and case 7 (multicast with 1
 * to 64 consumers: latency, then throughput on the same processes, against
 * tee feeding as many cats). The harness is the driver: it writes
 * timestamped records into the input side and reads every output.
 */
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import type { Ctx } from '../lib/context.js';
import type { Impl, Mode } from '../lib/impl.js';
import type { InputFile } from '../lib/input.js';
import { driveLatency, type LatencyResult } from '../lib/latency.js';
import {
  catScript, checkOutputs, checkProcs, finish, openFilebus, openShell, removeSession, streamTimeoutMs, teeScript, type Session,
} from '../lib/pipelines.js';
import { now, withTimeout } from '../lib/procs.js';
import { fmt } from '../lib/report.js';
import { LatencyParser } from '../lib/sinks.js';
import { formatBytes, median, medianPercentiles, MiB, type Percentiles } from '../lib/stats.js';

const PER_SECOND = 100;

interface Opened {
  readonly session: Session;
  readonly parsers: LatencyParser[];
}

type Opener = (parser: () => LatencyParser) => Promise<Session>;

async function open(opener: Opener): Promise<Opened> {
  const parsers: LatencyParser[] = [];
  const session = await opener(() => {
    const p = new LatencyParser();
    parsers.push(p);
    return p;
  });
  return { session, parsers };
}

/** Records latency failures: corrupt or repeated records anywhere, lost ones where nothing may be lost. */
function checkLatency(ctx: Ctx, label: string, result: LatencyResult, lossless: boolean): boolean {
  let ok = true;
  if (result.corrupt > 0) { ctx.report.fail(`${label}: ${result.corrupt} records arrived corrupt (bytes mismatch)`); ok = false; }
  if (result.duplicates > 0 && lossless) { ctx.report.fail(`${label}: ${result.duplicates} records arrived twice`); ok = false; }
  const lost = result.missed.reduce((a, b) => a + b, 0);
  if (lost > 0 && lossless) { ctx.report.fail(`${label}: ${lost} records never arrived`); ok = false; }
  return ok;
}

/** Ends the input and waits for everything to finish; lossy consumers are stopped once the producer is done. */
async function close(session: Session, lossy: boolean): Promise<void> {
  session.input?.end();
  if (lossy && session.producer) {
    await withTimeout(session.producer.done, 30_000, `${session.label}: producer`);
    await delay(200);
    session.stopConsumers();
  }
  await finish(session, 60_000);
}

async function latencyRun(ctx: Ctx, label: string, opener: Opener, messages: number, mode: Mode | 'cat'): Promise<LatencyResult | undefined> {
  let opened: Opened | undefined;
  const lossless = mode !== 'lossy';
  try {
    opened = await open(opener);
    const { session, parsers } = opened;
    const result = await driveLatency(session.input!, parsers, { messages, perSecond: PER_SECOND, lossless });
    await close(session, mode === 'lossy');
    const ok = checkProcs(ctx, session) && checkLatency(ctx, label, result, lossless);
    return ok ? result : undefined;
  } catch (error) {
    ctx.report.fail(`${label}: ${(error as Error).message}`);
    for (const p of opened?.session.procs ?? []) p.killGroup();
    return undefined;
  } finally {
    if (opened) removeSession(opened.session);
  }
}

function filebusOpener(ctx: Ctx, impl: Impl, mode: Mode, consumers: number, label: string): Opener {
  return (parser) => openFilebus(ctx, { impl, mode, consumers, busBase: ctx.ws.tmpfs, stdin: 'pipe', parser, label });
}

function shellOpener(label: string, script: string, outputs: number): Opener {
  return async (parser) => openShell({ label, script, outputs, stdin: 'pipe', parser });
}

const TARGETS: Record<keyof Omit<Percentiles, 'n'>, { text: string; ok: (v: number) => boolean } | undefined> = {
  p50: { text: '< 1 ms', ok: (v) => v < 1 },
  p90: undefined,
  p99: { text: '< 5 ms', ok: (v) => v < 5 },
  max: undefined,
};

function addLatencyRows(ctx: Ctx, what: string, impl: string, value: Percentiles | undefined, base: Percentiles | undefined, note: string): void {
  for (const key of ['p50', 'p90', 'p99', 'max'] as const) {
    const v = value ? value[key] : null;
    const b = base ? base[key] : null;
    const target = TARGETS[key];
    ctx.report.add({
      case: 4, what, impl, metric: `${key} ms`, value: v, baselineName: 'cat', baseline: b,
      ratio: v !== null && b !== null ? v / b : null, target: target?.text ?? '', met: target && v !== null ? target.ok(v) : null,
      ...(key === 'p50' && note && { note }),
    });
  }
}

export async function latencyPerMode(ctx: Ctx): Promise<void> {
  const { sizes } = ctx;
  const n = sizes.latencyMessages;
  const modes: Mode[] = ['lossy', 'back-pressure', 'multicast'];
  const runs: Record<string, LatencyResult[]> = { cat: [] };
  const refRuns: Record<string, LatencyResult[]> = {};
  for (let rep = 1; rep <= sizes.reps; rep++) {
    ctx.log(`case 4: rep ${rep}/${sizes.reps}`);
    const cat = await latencyRun(ctx, `case 4 cat #${rep}`, shellOpener(`case 4 cat #${rep}`, catScript(), 1), n, 'cat');
    if (cat) runs['cat']!.push(cat);
    for (const mode of modes) {
      const label = `case 4 filebus ${mode} #${rep}`;
      const r = await latencyRun(ctx, label, filebusOpener(ctx, ctx.filebus, mode, 1, label), n, mode);
      if (r) (runs[mode] ??= []).push(r);
      if (ctx.reference && mode !== 'multicast') {
        const refLabel = `case 4 reference ${mode} #${rep}`;
        const rr = await latencyRun(ctx, refLabel, filebusOpener(ctx, ctx.reference, mode, 1, refLabel), n, mode);
        if (rr) (refRuns[mode] ??= []).push(rr);
      }
    }
  }
  const summary = (list: LatencyResult[] | undefined): Percentiles | undefined =>
    list && list.length ? medianPercentiles(list.map((r) => r.pooled)) : undefined;
  const base = summary(runs['cat']);
  if (base) ctx.report.latency.push({ label: 'baseline: cat', ...base });
  for (const mode of modes) {
    const value = summary(runs[mode]);
    const list = runs[mode] ?? [];
    const missed = list.map((r) => r.missed[0] ?? 0);
    const note = `${list.length} run${list.length === 1 ? '' : 's'} of ${n} messages at ${PER_SECOND}/s, median of each percentile, max of max` +
      (mode === 'lossy' ? `; missed per run: ${missed.join(', ') || '-'}` : '');
    addLatencyRows(ctx, `${mode}, 100-byte messages`, 'filebus', value, base, note);
    if (value) ctx.report.latency.push({ label: `filebus ${mode}`, ...value });
    if (ctx.reference) {
      if (mode === 'multicast') {
        ctx.report.add({
          case: 4, what: 'multicast, 100-byte messages', impl: 'reference', metric: 'p50 ms', value: null, baselineName: 'cat',
          baseline: null, ratio: null, target: '< 1 ms', met: null, note: 'skipped: the reference has no --multicast',
        });
      } else {
        const rv = summary(refRuns[mode]);
        const rmissed = (refRuns[mode] ?? []).map((r) => r.missed[0] ?? 0);
        addLatencyRows(ctx, `${mode}, 100-byte messages`, 'reference', rv, base,
          `${(refRuns[mode] ?? []).length} run${(refRuns[mode] ?? []).length === 1 ? '' : 's'} of ${n} messages` + (mode === 'lossy' ? `; missed per run: ${rmissed.join(', ')}` : ''));
        if (rv) ctx.report.latency.push({ label: `reference ${mode}`, ...rv });
      }
    }
  }
  ctx.report.detail({ messages: n, perSecond: PER_SECOND, filebus: runs, reference: refRuns });
}

// ---------------------------------------------------------------------------

interface ScaleRun {
  readonly latency: LatencyResult;
  readonly wallS: number;
}

/** Latency on an opened multicast-like session, then a stream of `input` through the same processes. */
async function scaleRun(ctx: Ctx, label: string, opener: Opener, input: InputFile, messages: number): Promise<ScaleRun | undefined> {
  let opened: Opened | undefined;
  try {
    opened = await open(opener);
    const { session, parsers } = opened;
    const latency = await driveLatency(session.input!, parsers, { messages, perSecond: PER_SECOND, lossless: true });
    if (!checkLatency(ctx, label, latency, true)) throw new Error('latency phase failed');
    for (const sink of session.sinks) {
      if ((sink.parser?.pendingBytes ?? 0) > 0) throw new Error(`${sink.name}: a partial record after the latency phase`);
      sink.parser = undefined;
    }
    const start = now();
    const limit = streamTimeoutMs(input.bytes, session.sinks.length);
    await withTimeout(pipeline(fs.createReadStream(input.path, { highWaterMark: MiB }), session.input!), limit, `${label}: writing the input`);
    const { end } = await finish(session, Math.max(10_000, limit - Number(now() - start) / 1e6));
    const ok = checkProcs(ctx, session) && checkOutputs(ctx, session, input);
    return ok ? { latency, wallS: Number(end - start) / 1e9 } : undefined;
  } catch (error) {
    ctx.report.fail(`${label}: ${(error as Error).message}`);
    for (const p of opened?.session.procs ?? []) p.killGroup();
    return undefined;
  } finally {
    if (opened) removeSession(opened.session);
  }
}

export async function multicastScale(ctx: Ctx): Promise<void> {
  const { sizes } = ctx;
  const detail: Record<string, unknown> = {};
  for (const n of sizes.scaleConsumers) {
    const input = ctx.inputs.get(sizes.scaleBytes(n));
    ctx.log(`case 7 ×${n}`);
    const teeLabel = `case 7 tee ×${n}`;
    const tee = await scaleRun(ctx, teeLabel, shellOpener(teeLabel, teeScript(n), n), input, sizes.scaleMessages);
    const fbLabel = `case 7 filebus multicast ×${n}`;
    const fb = await scaleRun(ctx, fbLabel, filebusOpener(ctx, ctx.filebus, 'multicast', n, fbLabel), input, sizes.scaleMessages);
    const what = `multicast, ${n} consumer${n > 1 ? 's' : ''}`;
    const ratio = fb && tee ? fb.wallS / tee.wallS : null;
    ctx.report.add({
      case: 7, what: `${what}, ${formatBytes(input.bytes)} stream`, impl: 'filebus', metric: 'wall s', value: fb?.wallS ?? null,
      baselineName: `tee→${n}×cat`, baseline: tee?.wallS ?? null, ratio, target: '≤ 2× tee (as case 2)', met: ratio === null ? null : ratio <= 2,
      note: `one run; input written by the harness through a pipe, default block size 64 KiB; ${fb ? fmt(input.bytes / 1e6 / fb.wallS) : '-'} MB/s per consumer`,
    });
    const p99 = fb?.latency.pooled.p99 ?? null;
    const teeP99 = tee?.latency.pooled.p99 ?? null;
    ctx.report.add({
      case: 7, what: `${what}, ${sizes.scaleMessages} messages at ${PER_SECOND}/s`, impl: 'filebus', metric: 'p99 ms', value: p99,
      baselineName: `tee→${n}×cat`, baseline: teeP99, ratio: p99 !== null && teeP99 ? p99 / teeP99 : null,
      target: '< 5 ms (as case 4)', met: p99 === null ? null : p99 < 5,
      note: `all consumers' samples together; p50 ${fmt(fb?.latency.pooled.p50)} ms, max ${fmt(fb?.latency.pooled.max)} ms; worst consumer's p99 ${fmt(fb ? Math.max(...fb.latency.perOutput.map((p) => p.p99)) : null)} ms`,
    });
    if (fb) ctx.report.throughput.push({ group: `multicast 64 KiB, ${n} consumer${n > 1 ? 's' : ''} (scale)`, series: 'filebus', mbps: input.bytes / 1e6 / fb.wallS });
    if (tee) ctx.report.throughput.push({ group: `multicast 64 KiB, ${n} consumer${n > 1 ? 's' : ''} (scale)`, series: `baseline (tee→${n}×cat)`, mbps: input.bytes / 1e6 / tee.wallS });
    detail[String(n)] = { input: input.bytes, tee, filebus: fb, medianP99PerConsumer: fb ? median(fb.latency.perOutput.map((p) => p.p99)) : null };
  }
  if (ctx.reference) {
    ctx.report.add({
      case: 7, what: 'multicast, all consumer counts', impl: 'reference', metric: 'wall s', value: null, baselineName: 'tee',
      baseline: null, ratio: null, target: '', met: null, note: 'skipped: the reference has no --multicast',
    });
  }
  ctx.report.detail(detail);
}
