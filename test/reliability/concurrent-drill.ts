/**
 * The concurrent crash drill as a vitest case, shared by the three
 * concurrent-crash-*.test.ts files (one per mode, so vitest runs them side
 * by side). See concurrent.ts for what one run does and checks.
 */
import { expect } from 'vitest';
import { RUNS, writeResults, seedFor } from '../helpers/reliability.js';
import { drillConfig, haveStrace, runDrill, type Mode, type RunResult } from './concurrent.js';

/** Runs per mode: RELIABILITY_CONCURRENT_RUNS, else a thirty-third of RELIABILITY_RUNS (6 by default). */
export const CONCURRENT_RUNS = Number(process.env.RELIABILITY_CONCURRENT_RUNS ?? Math.max(1, Math.round(RUNS / 33)));

export async function concurrentDrill(mode: Mode): Promise<void> {
  if (!haveStrace()) throw new Error('strace is needed for the injected kills (apt-get install strace)');
  const base = seedFor(`concurrent-crash-${mode}`);
  const results: RunResult[] = [];
  for (let i = 0; i < CONCURRENT_RUNS; i++) results.push(await runDrill(drillConfig(mode, (base + i) >>> 0)));
  const sum = (f: (r: RunResult) => number): number => results.reduce((n, r) => n + f(r), 0);
  const injectedAt: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.injectedAt)) injectedAt[k] = (injectedAt[k] ?? 0) + v;
  const faultsByKind: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.faultsByKind)) faultsByKind[k] = (faultsByKind[k] ?? 0) + v;
  const failed = results.filter((r) => r.defects.length > 0);
  writeResults(`concurrent-crash/${mode}`, {
    seed: base,
    runs: results.length,
    producers: sum((r) => r.producers),
    faultsInjected: sum((r) => r.faults),
    faultsByKind,
    injectedAt,
    recordsChecked: sum((r) => r.records),
    recordsLost: sum((r) => r.lost),
    recordsRepeated: sum((r) => r.repeated),
    recordsRepeatedAtAConsumerKill: sum((r) => r.allowedRepeats),
    tornRecords: sum((r) => r.torn),
    hungRuns: results.filter((r) => r.hung).length,
    markersTakenByKilledConsumers: mode === 'back-pressure' ? sum((r) => r.markersTakenByKilledConsumers) : undefined,
    segmentNumbersReused: mode === 'multicast' ? sum((r) => r.reusedNumbers) : undefined,
    failedRuns: failed.map((r) => ({ seed: r.seed, hung: r.hung, defects: r.defects.slice(0, 4) })),
    seconds: Math.round(sum((r) => r.seconds)),
  });
  const report = failed.map((r) => `run with seed ${r.seed} (RELIABILITY_SEED=${r.seed} RELIABILITY_CONCURRENT_RUNS=1 replays it):\n  ${r.defects.slice(0, 8).join('\n  ')}${r.defects.length > 8 ? `\n  ... ${r.defects.length - 8} more` : ''}`);
  const summary = `${mode}: ${failed.length} of ${results.length} runs failed; ${sum((r) => r.faults)} faults, ${sum((r) => r.records)} records checked, ` +
    `${sum((r) => r.lost)} lost, ${sum((r) => r.repeated)} repeated, ${sum((r) => r.torn)} torn, ${results.filter((r) => r.hung).length} hung` +
    `${mode === 'multicast' ? `, ${sum((r) => r.reusedNumbers)} segment numbers published twice` : ''}`;
  // The whole report, not a truncated diff: each line names a defect and the seed that replays it.
  if (failed.length > 0) throw new Error(`${summary}\n${report.join('\n')}`);
  expect(sum((r) => r.faults), 'faults injected').toBeGreaterThan(0);
}
