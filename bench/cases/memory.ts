/**
 * Case 5: peak resident memory of each filebus process while streaming a
 * large input with 1 MiB chunks. VmHWM is read from /proc/PID/status at
 * exit (a preload in each Node process) and polled every 50 ms with VmRSS
 * as a fallback; the largest is reported. Baseline: a Node process piping
 * stdin to stdout on the same stream, the floor for any Node streamer.
 */
import fs from 'node:fs';
import path from 'node:path';
import { implEnv, readExitHwm, type Ctx } from '../lib/context.js';
import type { Impl, Mode } from '../lib/impl.js';
import type { InputFile } from '../lib/input.js';
import { completeStream, openCommand, openFilebus, type Session } from '../lib/pipelines.js';
import { MemoryWatch } from '../lib/procs.js';
import { fmt } from '../lib/report.js';
import { formatBytes, MiB } from '../lib/stats.js';

const TARGET_MB = 80;

interface Measured {
  readonly name: string;
  readonly peakMB: number;
  readonly fromExit: boolean;
}

/** Streams `input` through an opened session while watching every process; peak RSS per process in MB (10^6 bytes). */
async function measure(ctx: Ctx, session: Session, input: InputFile, hwmFile: string, impl?: Impl): Promise<{ ok: boolean; wallS: number; peaks: Measured[] }> {
  const watches = session.procs.map((p) => new MemoryWatch(p.pid));
  try {
    const result = await completeStream(ctx, session, input, impl);
    const exit = readExitHwm(hwmFile);
    const peaks = session.procs.map((p, i) => ({
      name: p.name.replace(/^.*: /, ''),
      peakMB: (watches[i]!.peakMiB(exit.get(p.pid)) * MiB) / 1e6,
      fromExit: exit.has(p.pid),
    }));
    return { ok: result.ok, wallS: result.wallS, peaks };
  } finally {
    for (const w of watches) w.stop();
  }
}

export async function peakMemory(ctx: Ctx): Promise<void> {
  const { sizes } = ctx;
  const input = ctx.inputs.get(sizes.memoryBytes);
  const hwmFile = path.join(ctx.ws.root, 'hwm-case5.txt');
  const detail: Record<string, unknown> = {};

  ctx.log('case 5: baseline node pipe');
  let baseMB: number | null = null;
  try {
    const session = openCommand({
      label: 'case 5 node stdin→stdout',
      argv: [process.execPath, '-e', 'process.stdin.pipe(process.stdout)'],
      stdin: { file: input.path },
      env: implEnv(ctx, ctx.filebus, hwmFile),
    });
    const base = await measure(ctx, session, input, hwmFile);
    if (base.ok) baseMB = base.peaks[0]!.peakMB;
    detail['baseline'] = base;
  } catch (error) {
    ctx.report.fail(`case 5 baseline: ${(error as Error).message}`);
  }

  const configs: { mode: Mode; consumers: number; impl: Impl; input: InputFile }[] = [
    { mode: 'multicast', consumers: 2, impl: ctx.filebus, input },
    { mode: 'back-pressure', consumers: 1, impl: ctx.filebus, input },
  ];
  if (ctx.reference) configs.push({ mode: 'back-pressure', consumers: 1, impl: ctx.reference, input: ctx.inputs.get(sizes.memoryReferenceBytes) });
  for (const c of configs) {
    const label = `case 5 ${c.impl.id} ${c.mode} ×${c.consumers}`;
    ctx.log(label);
    const what = `${c.mode}, ${c.consumers} consumer${c.consumers > 1 ? 's' : ''}, 1 MiB chunks, ${formatBytes(c.input.bytes)}`;
    let result: Awaited<ReturnType<typeof measure>> | undefined;
    try {
      fs.rmSync(hwmFile, { force: true });
      const session = await openFilebus(ctx, {
        impl: c.impl, mode: c.mode, consumers: c.consumers, blockSize: MiB, busBase: ctx.ws.tmpfs,
        stdin: { file: c.input.path }, hwmFile, label,
      });
      result = await measure(ctx, session, c.input, hwmFile, c.impl);
    } catch (error) {
      ctx.report.fail(`${label}: ${(error as Error).message}`);
    }
    detail[label] = result;
    const peaks = result?.ok ? result.peaks : [];
    // Producer first, then consumers (the session lists consumers first).
    const ordered = [...peaks.filter((p) => p.name === 'producer'), ...peaks.filter((p) => p.name !== 'producer')];
    if (ordered.length === 0) {
      ctx.report.add({
        case: 5, what, impl: c.impl.id, metric: 'peak RSS MB', value: null, baselineName: 'node pipe', baseline: baseMB,
        ratio: null, target: `< ${TARGET_MB} MB`, met: null, note: 'run failed',
      });
    }
    for (const p of ordered) {
      ctx.report.add({
        case: 5, what: `${what}: ${p.name}`, impl: c.impl.id, metric: 'peak RSS MB', value: p.peakMB,
        baselineName: 'node pipe', baseline: baseMB, ratio: baseMB ? p.peakMB / baseMB : null,
        target: `< ${TARGET_MB} MB`, met: p.peakMB < TARGET_MB,
        ...(p === ordered[0] && {
          note: `VmHWM ${c.impl.node ? 'read at exit' : 'polled every 50 ms'}; stream took ${fmt(result?.wallS)} s; bus on tmpfs` +
            (c.impl.id === 'reference' ? '; smaller input (the reference polls every 0.1 s)' : ''),
        }),
      });
    }
  }
  if (ctx.reference) {
    ctx.report.add({
      case: 5, what: 'multicast', impl: 'reference', metric: 'peak RSS MB', value: null, baselineName: 'node pipe', baseline: null,
      ratio: null, target: `< ${TARGET_MB} MB`, met: null, note: 'skipped: the reference has no --multicast',
    });
  }
  ctx.report.detail(detail);
}
