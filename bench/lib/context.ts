/** What every case gets: sizes for this run, the workspace, the implementations and the report. */
import fs from 'node:fs';
import path from 'node:path';
import type { Workspace } from './env.js';
import type { Impl } from './impl.js';
import type { Inputs } from './input.js';
import { childEnv } from './procs.js';
import type { Report } from './report.js';
import { GiB, MiB } from './stats.js';

export interface Sizes {
  /** Case 1: back-pressure stream, filebus / reference. */
  readonly bpBytes: number;
  readonly bpReferenceBytes: number;
  /** Case 2: multicast fan-out stream. */
  readonly fanoutBytes: number;
  readonly fanoutConsumers: readonly number[];
  /** Case 3: 4 KiB chunks. */
  readonly smallBytes: number;
  /** Case 4: latency messages per repetition. */
  readonly latencyMessages: number;
  /** Case 5: memory stream, filebus / reference. */
  readonly memoryBytes: number;
  readonly memoryReferenceBytes: number;
  /** Case 6: seconds of 1,000 chunks per second. */
  readonly lossySeconds: number;
  /** Case 7: consumers, stream size for each count, latency messages. */
  readonly scaleConsumers: readonly number[];
  readonly scaleBytes: (consumers: number) => number;
  readonly scaleMessages: number;
  /** Repetitions of the key cases (1 to 4). */
  readonly reps: number;
  /**
   * Case 1's repetitions when --reps is not given: its baseline moves 1 GiB
   * in about half a second, where another tenant's burst shows most, and a
   * pair of runs costs only a few seconds.
   */
  readonly bpReps: number;
}

export const FULL: Sizes = {
  bpBytes: GiB,
  bpReferenceBytes: 64 * MiB,
  fanoutBytes: GiB,
  fanoutConsumers: [1, 2, 4, 8],
  smallBytes: 64 * MiB,
  latencyMessages: 1000,
  memoryBytes: 2 * GiB,
  memoryReferenceBytes: 64 * MiB,
  lossySeconds: 10,
  scaleConsumers: [1, 8, 32, 64],
  scaleBytes: (n) => (n <= 8 ? 256 * MiB : 32 * MiB),
  scaleMessages: 500,
  reps: 3,
  bpReps: 5,
};

export const QUICK: Sizes = {
  bpBytes: 16 * MiB,
  bpReferenceBytes: 4 * MiB,
  fanoutBytes: 8 * MiB,
  fanoutConsumers: [1, 2, 4, 8],
  smallBytes: MiB,
  latencyMessages: 40,
  memoryBytes: 32 * MiB,
  memoryReferenceBytes: 4 * MiB,
  lossySeconds: 1,
  // 32 left out to stay under a minute on 2 CPUs: every consumer is a Node process to start.
  scaleConsumers: [1, 8, 64],
  scaleBytes: (n) => (n <= 8 ? 4 * MiB : MiB),
  scaleMessages: 30,
  reps: 1,
  bpReps: 1,
};

export interface Ctx {
  readonly quick: boolean;
  readonly sizes: Sizes;
  readonly repo: string;
  readonly ws: Workspace;
  readonly inputs: Inputs;
  readonly filebus: Impl;
  readonly reference: Impl | undefined;
  readonly report: Report;
  /** When set, filebus processes run with --cpu-prof and write their profiles here. */
  readonly cpuProfDir: string | undefined;
  log(line: string): void;
}

let runCounter = 0;

/** A fresh, empty directory for one bus under `base`. */
export function freshBusDir(base: string, label: string): string {
  runCounter += 1;
  const dir = path.join(base, `${String(runCounter).padStart(3, '0')}-${label.replace(/[^A-Za-z0-9_-]+/g, '_')}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export const HWM_PRELOAD = path.join(path.dirname(new URL(import.meta.url).pathname), 'hwm-preload.cjs');

/** The environment of a process of `impl`: the memory preload applies to Node processes only. */
export function implEnv(ctx: Ctx, impl: Impl, hwmFile?: string): NodeJS.ProcessEnv {
  if (!impl.node) return childEnv();
  const options: string[] = [];
  const extra: NodeJS.ProcessEnv = {};
  if (hwmFile) {
    options.push('--require', JSON.stringify(HWM_PRELOAD));
    extra['FILEBUS_BENCH_HWM_FILE'] = hwmFile;
  }
  if (options.length) extra['NODE_OPTIONS'] = options.join(' ');
  return childEnv(extra);
}

/** `impl` run with node --cpu-prof when the run profiles (Node processes only; not allowed in NODE_OPTIONS). */
export function profiled(ctx: Ctx, impl: Impl): Impl {
  if (!ctx.cpuProfDir || !impl.node || impl.command[0] !== process.execPath) return impl;
  return { ...impl, command: [process.execPath, '--cpu-prof', `--cpu-prof-dir=${ctx.cpuProfDir}`, ...impl.command.slice(1)] };
}

/** pid → VmHWM (kB) reported at exit by the preload. */
export function readExitHwm(file: string): Map<number, number> {
  const map = new Map<number, number>();
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return map;
  }
  for (const line of text.split('\n')) {
    const [pid, kb] = line.trim().split(/\s+/).map(Number);
    if (pid && kb) map.set(pid, kb);
  }
  return map;
}
