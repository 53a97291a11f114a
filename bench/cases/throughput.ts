/**
 * Cases 1 to 3: streams of random bytes from a file through the bus, every
 * output checked against the input's CRC-32, beside the same stream through
 * cat or tee into the same sinks. Repetitions alternate baseline and
 * filebus, so slow spells of a shared machine hit both.
 */
import type { Ctx } from '../lib/context.js';
import type { Impl } from '../lib/impl.js';
import type { InputFile } from '../lib/input.js';
import { catCatScript, completeStream, openFilebus, openShell, teeScript, type StreamResult } from '../lib/pipelines.js';
import { fmt } from '../lib/report.js';
import { formatBytes, mbPerSecond, median, MiB } from '../lib/stats.js';

async function filebusStream(ctx: Ctx, impl: Impl, o: {
  mode: 'back-pressure' | 'multicast'; consumers: number; blockSize: number; input: InputFile; busBase: string; label: string;
}): Promise<StreamResult | undefined> {
  try {
    const session = await openFilebus(ctx, { ...o, impl, stdin: { file: o.input.path } });
    return await completeStream(ctx, session, o.input, impl);
  } catch (error) {
    ctx.report.fail(`${o.label}: ${(error as Error).message}`);
    return undefined;
  }
}

async function shellStream(ctx: Ctx, label: string, script: string, outputs: number, input: InputFile): Promise<StreamResult | undefined> {
  try {
    return await completeStream(ctx, openShell({ label, script, outputs, stdin: { file: input.path } }), input);
  } catch (error) {
    ctx.report.fail(`${label}: ${(error as Error).message}`);
    return undefined;
  }
}

const good = (runs: (StreamResult | undefined)[]): StreamResult[] => runs.filter((r): r is StreamResult => r !== undefined && r.ok);

/** Seconds from a run's first output byte to its last, over all outputs. */
function streamingSeconds(r: StreamResult): number {
  return Math.max(...r.outputs.map((o) => o.lastS)) - Math.min(...r.outputs.map((o) => o.firstS));
}

function chunkNote(runs: StreamResult[], bytes: number): string {
  const chunks = median(runs.map((r) => r.chunks ?? NaN));
  return Number.isNaN(chunks) ? '' : `; ${fmt(chunks)} chunks published, mean ${formatBytes(Math.round(bytes / chunks))}`;
}

function repsNote(n: number, of: number): string {
  return n === of ? `median of ${n}` : `median of ${n} good runs of ${of}`;
}

// ---------------------------------------------------------------------------

export async function backPressureThroughput(ctx: Ctx): Promise<void> {
  const { sizes } = ctx;
  const block = MiB;
  for (const fsys of [{ name: 'tmpfs', base: ctx.ws.tmpfs }, { name: 'disk', base: ctx.ws.disk }]) {
    const input = ctx.inputs.get(sizes.bpBytes);
    const what = `back-pressure, 1 MiB chunks, ${formatBytes(input.bytes)}, bus on ${fsys.name}`;
    const cat: (StreamResult | undefined)[] = [];
    const fb: (StreamResult | undefined)[] = [];
    for (let rep = 1; rep <= sizes.bpReps; rep++) {
      ctx.log(`case 1 ${fsys.name}: rep ${rep}/${sizes.bpReps}`);
      cat.push(await shellStream(ctx, `case 1 cat|cat ${fsys.name} #${rep}`, catCatScript(), 1, input));
      fb.push(await filebusStream(ctx, ctx.filebus, {
        mode: 'back-pressure', consumers: 1, blockSize: block, input, busBase: fsys.base, label: `case 1 filebus ${fsys.name} #${rep}`,
      }));
    }
    const catOk = good(cat);
    const fbOk = good(fb);
    const catMBps = median(catOk.map((r) => mbPerSecond(input.bytes, r.wallS)));
    const fbMBps = fbOk.length ? median(fbOk.map((r) => mbPerSecond(input.bytes, r.wallS))) : null;
    const streaming = median(fbOk.map((r) => mbPerSecond(input.bytes, streamingSeconds(r))));
    const ratio = fbMBps === null ? null : fbMBps / catMBps;
    ctx.report.add({
      case: 1, what, impl: 'filebus', metric: 'MB/s', value: fbMBps,
      baselineName: 'cat|cat', baseline: catMBps, ratio, target: '≥ 0.5× cat', met: ratio === null ? null : ratio >= 0.5,
      note: `${repsNote(fbOk.length, sizes.bpReps)}; wall time from producer start (includes Node start-up), first→last byte ${fmt(streaming)} MB/s${chunkNote(fbOk, input.bytes)}`,
    });
    ctx.report.throughput.push(
      { group: `back-pressure 1 MiB, ${fsys.name}`, series: 'filebus', mbps: fbMBps ?? 0 },
      { group: `back-pressure 1 MiB, ${fsys.name}`, series: 'baseline (cat|cat)', mbps: catMBps },
    );
    ctx.report.detail({ input: input.bytes, cat, filebus: fb }, fsys.name);

    if (ctx.reference) {
      const refInput = ctx.inputs.get(sizes.bpReferenceBytes);
      ctx.log(`case 1 ${fsys.name}: reference, ${formatBytes(refInput.bytes)}`);
      const refCat = await shellStream(ctx, `case 1 cat|cat ${fsys.name} (reference size)`, catCatScript(), 1, refInput);
      const ref = await filebusStream(ctx, ctx.reference, {
        mode: 'back-pressure', consumers: 1, blockSize: block, input: refInput, busBase: fsys.base, label: `case 1 reference ${fsys.name}`,
      });
      const refMBps = ref?.ok ? mbPerSecond(refInput.bytes, ref.wallS) : null;
      const refCatMBps = refCat?.ok ? mbPerSecond(refInput.bytes, refCat.wallS) : null;
      const refRatio = refMBps !== null && refCatMBps !== null ? refMBps / refCatMBps : null;
      ctx.report.add({
        case: 1, what: `back-pressure, 1 MiB chunks, ${formatBytes(refInput.bytes)}, bus on ${fsys.name}`, impl: 'reference', metric: 'MB/s',
        value: refMBps, baselineName: 'cat|cat', baseline: refCatMBps, ratio: refRatio, target: '≥ 0.5× cat',
        met: refRatio === null ? null : refRatio >= 0.5,
        note: `one run on a smaller input (the reference polls every 0.1 s, about 5 MB/s)`,
      });
      if (refMBps !== null) ctx.report.throughput.push({ group: `back-pressure 1 MiB, ${fsys.name}`, series: 'reference', mbps: refMBps });
      ctx.report.detail({ input: refInput.bytes, cat: refCat, reference: ref }, `${fsys.name}.reference`);
    }
  }
}

export async function multicastFanOut(ctx: Ctx): Promise<void> {
  const { sizes } = ctx;
  const input = ctx.inputs.get(sizes.fanoutBytes);
  for (const n of sizes.fanoutConsumers) {
    const what = `multicast, 1 MiB chunks, ${formatBytes(input.bytes)}, ${n} consumer${n > 1 ? 's' : ''}`;
    const tee: (StreamResult | undefined)[] = [];
    const fb: (StreamResult | undefined)[] = [];
    for (let rep = 1; rep <= sizes.reps; rep++) {
      ctx.log(`case 2 ×${n}: rep ${rep}/${sizes.reps}`);
      tee.push(await shellStream(ctx, `case 2 tee ×${n} #${rep}`, teeScript(n), n, input));
      fb.push(await filebusStream(ctx, ctx.filebus, {
        mode: 'multicast', consumers: n, blockSize: MiB, input, busBase: ctx.ws.tmpfs, label: `case 2 filebus ×${n} #${rep}`,
      }));
    }
    const teeOk = good(tee);
    const fbOk = good(fb);
    const teeWall = median(teeOk.map((r) => r.wallS));
    const fbWall = fbOk.length ? median(fbOk.map((r) => r.wallS)) : null;
    const ratio = fbWall === null ? null : fbWall / teeWall;
    ctx.report.add({
      case: 2, what, impl: 'filebus', metric: 'wall s', value: fbWall,
      baselineName: `tee→${n}×cat`, baseline: teeWall, ratio, target: '≤ 2× tee', met: ratio === null ? null : ratio <= 2,
      note: `${repsNote(fbOk.length, sizes.reps)}; ${fbWall ? fmt(mbPerSecond(input.bytes, fbWall)) : '-'} MB/s per consumer vs ${fmt(mbPerSecond(input.bytes, teeWall))} for tee; bus on tmpfs${chunkNote(fbOk, input.bytes)}`,
    });
    ctx.report.throughput.push(
      { group: `multicast 1 MiB, ${n} consumer${n > 1 ? 's' : ''}`, series: 'filebus', mbps: fbWall ? mbPerSecond(input.bytes, fbWall) : 0 },
      { group: `multicast 1 MiB, ${n} consumer${n > 1 ? 's' : ''}`, series: `baseline (tee→${n}×cat)`, mbps: mbPerSecond(input.bytes, teeWall) },
    );
    ctx.report.detail({ input: input.bytes, tee, filebus: fb }, String(n));
  }
  if (ctx.reference) {
    ctx.report.add({
      case: 2, what: 'multicast, all consumer counts', impl: 'reference', metric: 'wall s', value: null,
      baselineName: 'tee', baseline: null, ratio: null, target: '≤ 2× tee', met: null, note: 'skipped: the reference has no --multicast',
    });
  }
}

export async function smallChunkRate(ctx: Ctx): Promise<void> {
  const { sizes } = ctx;
  const input = ctx.inputs.get(sizes.smallBytes);
  const block = 4096;
  const chunks = input.bytes / block;
  const tee: (StreamResult | undefined)[] = [];
  const fb: (StreamResult | undefined)[] = [];
  for (let rep = 1; rep <= sizes.reps; rep++) {
    ctx.log(`case 3: rep ${rep}/${sizes.reps}`);
    tee.push(await shellStream(ctx, `case 3 tee ×2 #${rep}`, teeScript(2), 2, input));
    fb.push(await filebusStream(ctx, ctx.filebus, {
      mode: 'multicast', consumers: 2, blockSize: block, input, busBase: ctx.ws.tmpfs, label: `case 3 filebus 4 KiB ×2 #${rep}`,
    }));
  }
  // Chunks per second at the slower consumer, first byte to last.
  const rate = (r: StreamResult): number => Math.min(...r.outputs.map((o) => chunks / (o.lastS - o.firstS)));
  const wallRate = (r: StreamResult): number => Math.min(...r.outputs.map((o) => chunks / o.closeS));
  const teeOk = good(tee);
  const fbOk = good(fb);
  const teeRate = median(teeOk.map(rate));
  const fbRate = fbOk.length ? median(fbOk.map(rate)) : null;
  ctx.report.add({
    case: 3, what: `multicast, 4 KiB chunks, ${formatBytes(input.bytes)} (${fmt(chunks)} chunks), 2 consumers`, impl: 'filebus',
    metric: 'chunks/s per consumer', value: fbRate, baselineName: 'tee→2×cat', baseline: teeRate,
    ratio: fbRate === null ? null : fbRate / teeRate, target: '≥ 10,000/s', met: fbRate === null ? null : fbRate >= 10_000,
    note: `${repsNote(fbOk.length, sizes.reps)}; slower consumer, first→last byte (from producer start: ${fmt(median(fbOk.map(wallRate)))}/s); bytes verified; tee counted as bytes/4096; bus on tmpfs${chunkNote(fbOk, input.bytes)}`,
  });
  ctx.report.throughput.push(
    { group: 'multicast 4 KiB, 2 consumers', series: 'filebus', mbps: fbRate === null ? 0 : (fbRate * block) / 1e6 },
    { group: 'multicast 4 KiB, 2 consumers', series: 'baseline (tee→2×cat)', mbps: (teeRate * block) / 1e6 },
  );
  ctx.report.detail({ input: input.bytes, tee, filebus: fb });
  if (ctx.reference) {
    ctx.report.add({
      case: 3, what: 'multicast, 4 KiB chunks, 2 consumers', impl: 'reference', metric: 'chunks/s per consumer', value: null,
      baselineName: 'tee', baseline: null, ratio: null, target: '≥ 10,000/s', met: null, note: 'skipped: the reference has no --multicast',
    });
  }
}
