/**
 * Case 6: lossy mode under a steady stream. A writer process sends numbered
 * 4 KiB records, one write each, 1,000 per second, into the producer
 * (block size 4 KiB, so one record is one chunk); 4 lossy consumers watch.
 * Each consumer's output is parsed record by record and every record is
 * checked byte for byte; the fraction of numbers a consumer never printed
 * is what it missed. Baseline: the same writer into tee feeding 4 cats.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import type { Ctx } from '../lib/context.js';
import type { Impl } from '../lib/impl.js';
import { checkProcs, finish, openFilebus, openShell, removeSession, shq, teeScript, type Session } from '../lib/pipelines.js';
import { withTimeout } from '../lib/procs.js';
import { fmt } from '../lib/report.js';
import { LossParser } from '../lib/sinks.js';

const RATE = 1000;
const CONSUMERS = 4;
const WRITER = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'lib', 'paced-writer.ts');

interface LossRun {
  readonly missedFraction: number[];
  readonly writer: { sent: number; seconds: number; maxLateMs: number } | undefined;
  readonly duplicates: number;
  /** Per consumer, the numbers it never printed, as [first, last] runs: where a miss happened says why. */
  readonly missedRuns: Array<Array<[number, number]>>;
}

function feed(count: number): string {
  return `${shq(process.execPath)} --import ${shq(import.meta.resolve('tsx'))} ${shq(WRITER)} ${count} ${RATE}`;
}

async function lossRun(ctx: Ctx, label: string, count: number, impl: Impl | undefined): Promise<LossRun | undefined> {
  const parsers: LossParser[] = [];
  const parser = (): LossParser => {
    const p = new LossParser();
    parsers.push(p);
    return p;
  };
  let session: Session | undefined;
  try {
    session = impl
      ? await openFilebus(ctx, { impl, mode: 'lossy', consumers: CONSUMERS, blockSize: 4096, busBase: ctx.ws.tmpfs, stdin: { feed: feed(count) }, parser, label })
      : openShell({ label, script: teeScript(CONSUMERS), outputs: CONSUMERS, stdin: { feed: feed(count) }, parser });
    if (impl) {
      await withTimeout(session.producer!.done, 60_000 + count * 10, `${label}: writer and producer`);
      await delay(500);
      session.stopConsumers();
    }
    await finish(session, 60_000);
    let ok = checkProcs(ctx, session);
    const inputSide = session.producer ?? session.procs[0]!;
    const line = /WRITER (\{.*\})/.exec(inputSide.stderr);
    const writer = line ? (JSON.parse(line[1]!) as LossRun['writer']) : undefined;
    const corrupt = parsers.reduce((s, p) => s + p.corrupt + p.pendingBytes, 0);
    if (corrupt > 0) {
      ctx.report.fail(`${label}: ${corrupt} corrupt records or stray bytes in consumer output (bytes mismatch)`);
      ok = false;
    }
    const duplicates = parsers.reduce((s, p) => s + p.duplicates, 0);
    if (duplicates > 0) {
      ctx.report.fail(`${label}: ${duplicates} chunks printed twice by one consumer`);
      ok = false;
    }
    const outOfRange = parsers.some((p) => [...p.seen].some((n) => n < 0 || n >= count));
    if (outOfRange) {
      ctx.report.fail(`${label}: a consumer printed a chunk number that was never sent`);
      ok = false;
    }
    return ok ? { missedFraction: parsers.map((p) => 1 - p.seen.size / count), writer, duplicates, missedRuns: parsers.map((p) => missedRuns(p.seen, count)) } : undefined;
  } catch (error) {
    ctx.report.fail(`${label}: ${(error as Error).message}`);
    for (const p of session?.procs ?? []) p.killGroup();
    return undefined;
  } finally {
    if (session) removeSession(session);
  }
}

function missedRuns(seen: ReadonlySet<number>, count: number): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  for (let n = 0; n < count; n++) {
    if (seen.has(n)) continue;
    const last = runs.at(-1);
    if (last && last[1] === n - 1) last[1] = n;
    else runs.push([n, n]);
  }
  return runs;
}

const pct = (f: number): string => `${fmt(f * 100)}%`;

export async function lossyMisses(ctx: Ctx): Promise<void> {
  const count = RATE * ctx.sizes.lossySeconds;
  ctx.log('case 6: baseline tee');
  const base = await lossRun(ctx, 'case 6 tee ×4', count, undefined);
  const baseWorst = base ? Math.max(...base.missedFraction) : null;
  const impls = [ctx.filebus, ...(ctx.reference ? [ctx.reference] : [])];
  const detail: Record<string, unknown> = { chunks: count, rate: RATE, baseline: base };
  for (const impl of impls) {
    ctx.log(`case 6: ${impl.id}`);
    const run = await lossRun(ctx, `case 6 ${impl.id} lossy ×${CONSUMERS}`, count, impl);
    detail[impl.id] = run;
    const worst = run ? Math.max(...run.missedFraction) : null;
    const w = run?.writer;
    ctx.report.add({
      case: 6, what: `lossy, ${CONSUMERS} consumers, ${fmt(count)} chunks of 4 KiB at ${RATE}/s`, impl: impl.id,
      metric: 'missed % (worst consumer)', value: worst === null ? null : worst * 100,
      baselineName: 'tee→4×cat', baseline: baseWorst === null ? null : baseWorst * 100, ratio: null,
      target: 'zero', met: worst === null ? null : worst === 0,
      note: run
        ? `per consumer: ${run.missedFraction.map(pct).join(', ')}; writer sent ${w ? `${fmt(w.sent / w.seconds)}/s, at worst ${fmt(w.maxLateMs)} ms late` : '(no report)'}; one run, bus on tmpfs`
        : 'run failed',
    });
  }
  ctx.report.detail(detail);
}
