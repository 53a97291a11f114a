/**
 * The soak: `npm run soak -- --faults 10000` (not part of CI; needs strace).
 *
 * Runs the concurrent crash drill (test/reliability/concurrent.ts) again and
 * again across the modes, each run with its own seed and a shape drawn from
 * it (2-4 producers at once, 2-4 consumers, 2-4 faulted producers per slot,
 * up to 5 faulted consumers), until the number of faults is reached: producer
 * and consumer SIGKILLs injected by strace at the K-th call of a publish
 * step or at random instants, SIGSTOP/SIGCONT pauses, ENOSPC injected into
 * writes. Every run is bounded (a run not done 30 s after its last producers
 * started is a hang, reported with its seed), so the soak stops by itself.
 *
 * Prints a table per mode on stdout and writes the figures as JSON
 * (--out, default soak-results.json); exits 1 if any record was lost, torn
 * or repeated, or any run hung, where the mode promises it would not be,
 * 2 on a bad command line.
 *
 *   --faults N     faults to inject in all (default 10000)
 *   --seed S       base seed (default: from the clock); run i uses S+i
 *   --modes LIST   comma-separated: lossy,back-pressure,multicast (default all)
 *   --jobs J       runs at once (default 2)
 *   --out FILE     JSON results (default soak-results.json)
 *   --replay MODE:SEED   one run with the choices the soak made for it (a failing run's seed is printed;
 *                        the timing differs, so a race it met may need a few replays)
 *   --max-minutes M      start no new run after M minutes (default 600)
 */
import fs from 'node:fs';
import os from 'node:os';
import { rng } from '../helpers/reliability.js';
import { haveStrace, MODES, runDrill, stopAllRuns, type DrillConfig, type Mode, type RunResult } from '../reliability/concurrent.js';

interface Args { faults: number; seed: number; modes: Mode[]; jobs: number; out: string; replay?: { mode: Mode; seed: number }; maxMinutes: number }

function usage(message: string): never {
  process.stderr.write(`soak: ${message}\nusage: npm run soak -- [--faults N] [--seed S] [--modes lossy,back-pressure,multicast] [--jobs J] [--out FILE] [--replay MODE:SEED] [--max-minutes M]\n`);
  process.exit(2);
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { faults: 10_000, seed: Date.now() >>> 0, modes: [...MODES], jobs: 2, out: 'soak-results.json', maxMinutes: 600 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const [name, inline] = flag.includes('=') ? [flag.slice(0, flag.indexOf('=')), flag.slice(flag.indexOf('=') + 1)] : [flag, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) usage(`${name} needs a value`);
      return v;
    };
    const int = (min: number): number => {
      const v = value();
      if (!/^\d+$/.test(v) || Number(v) < min) usage(`${name}: expected an integer of at least ${min}, got ${JSON.stringify(v)}`);
      return Number(v);
    };
    switch (name) {
      case '--faults': args.faults = int(1); break;
      case '--seed': args.seed = int(0) >>> 0; break;
      case '--jobs': args.jobs = int(1); break;
      case '--max-minutes': args.maxMinutes = int(1); break;
      case '--out': args.out = value(); break;
      case '--modes': {
        const list = value().split(',').map((m) => m.trim()).filter(Boolean);
        for (const m of list) if (!MODES.includes(m as Mode)) usage(`--modes: unknown mode ${JSON.stringify(m)}`);
        if (list.length === 0) usage('--modes: empty');
        args.modes = list as Mode[];
        break;
      }
      case '--replay': {
        const m = /^(lossy|back-pressure|multicast):(\d+)$/.exec(value());
        if (!m) usage('--replay: expected MODE:SEED');
        args.replay = { mode: m[1] as Mode, seed: Number(m[2]) };
        break;
      }
      default: usage(`unknown argument ${JSON.stringify(flag)}`);
    }
  }
  return args;
}

/** The shape of one soak run, drawn from its seed (so --replay rebuilds it). */
export function soakConfig(mode: Mode, seed: number): DrillConfig {
  const r = rng(seed ^ 0x5eed);
  const between = (lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
  return {
    mode,
    seed,
    producers: between(2, 4),
    consumers: between(2, 4),
    producerFaults: between(2, 4),
    consumerFaults: mode === 'lossy' ? between(1, 3) : between(1, 5),
    kinds: ['strace-kill', 'strace-kill', 'strace-kill', 'timed-kill', 'timed-kill', 'stop', 'stop', 'enospc'],
    inputChunks: between(60, 200),
    finalChunks: between(5, 20),
    endPhaseMs: 30_000,
    endRounds: mode === 'back-pressure' ? between(1, 3) : 1,
  };
}

interface Totals {
  runs: number; faults: number; records: number; lost: number; repeated: number; allowedRepeats: number; torn: number;
  reusedNumbers: number; hung: number; failedRuns: number; seconds: number;
  faultsByKind: Record<string, number>; injectedAt: Record<string, number>;
  failures: Array<{ seed: number; replay: string; hung: boolean; defects: string[] }>;
}

function emptyTotals(): Totals {
  return {
    runs: 0, faults: 0, records: 0, lost: 0, repeated: 0, allowedRepeats: 0, torn: 0, reusedNumbers: 0, hung: 0, failedRuns: 0, seconds: 0,
    faultsByKind: {}, injectedAt: {}, failures: [],
  };
}

function add(t: Totals, r: RunResult): void {
  t.runs += 1; t.faults += r.faults; t.records += r.records; t.lost += r.lost; t.repeated += r.repeated;
  t.allowedRepeats += r.allowedRepeats; t.torn += r.torn; t.reusedNumbers += r.reusedNumbers; t.hung += r.hung ? 1 : 0; t.seconds += r.seconds;
  for (const [k, v] of Object.entries(r.faultsByKind)) t.faultsByKind[k] = (t.faultsByKind[k] ?? 0) + v;
  for (const [k, v] of Object.entries(r.injectedAt)) t.injectedAt[k] = (t.injectedAt[k] ?? 0) + v;
  if (r.defects.length > 0) {
    t.failedRuns += 1;
    if (t.failures.length < 50) t.failures.push({ seed: r.seed, replay: `npm run soak -- --replay ${r.mode}:${r.seed}`, hung: r.hung, defects: r.defects.slice(0, 10) });
  }
}

function table(totals: Record<string, Totals>): string {
  const head = ['mode', 'runs', 'faults', 'records checked', 'lost', 'repeated', 'repeated at a kill (allowed)', 'torn', 'numbers reused', 'hung', 'failed runs'];
  const rows = Object.entries(totals).map(([mode, t]) => [mode, t.runs, t.faults, t.records, t.lost, t.repeated, t.allowedRepeats, t.torn, t.reusedNumbers, t.hung, t.failedRuns].map(String));
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(width[i]!) : c.padStart(width[i]!))).join(' | ')} |`;
  return [line(head), `|${width.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (!haveStrace()) usage('strace is needed (apt-get install strace)');
  const t0 = Date.now();
  // Interrupted: leave no filebus process or bus behind (those under strace would outlive strace).
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      process.stderr.write(`soak: ${signal}: stopping every run in progress\n`);
      void stopAllRuns().finally(() => process.exit(130));
    });
  }
  const totals: Record<string, Totals> = Object.fromEntries((args.replay ? [args.replay.mode] : args.modes).map((m) => [m, emptyTotals()]));
  let faults = 0;
  let next = 0;
  let stoppedByTime = false;
  const plan = (): DrillConfig | undefined => {
    if (args.replay) return next++ === 0 ? soakConfig(args.replay.mode, args.replay.seed) : undefined;
    if (faults >= args.faults) return undefined;
    if (Date.now() - t0 > args.maxMinutes * 60_000) { stoppedByTime = true; return undefined; }
    const i = next++;
    return soakConfig(args.modes[i % args.modes.length]!, (args.seed + i) >>> 0);
  };
  const worker = async (): Promise<void> => {
    for (let cfg = plan(); cfg; cfg = plan()) {
      const r = await runDrill(cfg);
      faults += r.faults;
      add(totals[cfg.mode]!, r);
      const verdict = r.defects.length === 0 ? 'ok' : r.hung ? 'HUNG' : 'FAILED';
      process.stderr.write(`[${faults}/${args.replay ? '-' : args.faults} faults] ${cfg.mode} seed ${cfg.seed}: ${verdict} (${r.faults} faults, ${r.records} records, ${r.seconds} s)` +
        `${r.defects.length > 0 ? `\n    ${r.defects.slice(0, 3).join('\n    ')}` : ''}\n`);
    }
  };
  await Promise.all(Array.from({ length: args.replay ? 1 : args.jobs }, worker));

  const all = emptyTotals();
  for (const t of Object.values(totals)) {
    for (const k of ['runs', 'faults', 'records', 'lost', 'repeated', 'allowedRepeats', 'torn', 'reusedNumbers', 'hung', 'failedRuns', 'seconds'] as const) all[k] += t[k];
  }
  const failed = all.lost + all.repeated + all.torn + all.hung + all.failedRuns > 0;
  const seconds = Math.round((Date.now() - t0) / 1000);
  process.stdout.write(`${table({ ...totals, ...(Object.keys(totals).length > 1 ? { all } : {}) })}\n`);
  process.stdout.write(`${args.replay ? `replay ${args.replay.mode}:${args.replay.seed}` : `seed ${args.seed}`}, ${seconds} s, jobs ${args.replay ? 1 : args.jobs}${stoppedByTime ? `, stopped at --max-minutes ${args.maxMinutes}` : ''}; ` +
    `records: tagged ${128}-byte records, 4 to a chunk; results in ${args.out}\n`);
  for (const [mode, t] of Object.entries(totals)) {
    for (const f of t.failures.slice(0, 5)) {
      process.stdout.write(`${mode} seed ${f.seed}${f.hung ? ' (hung)' : ''}:\n  ${f.defects.slice(0, 3).join('\n  ')}\n  replay: ${f.replay}\n`);
    }
  }
  fs.writeFileSync(args.out, `${JSON.stringify({
    seed: args.seed, faultsRequested: args.faults, modes: Object.keys(totals), jobs: args.jobs, seconds, stoppedByTime,
    host: { cpus: os.cpus().length, load: os.loadavg() }, perMode: totals,
  }, null, 2)}\n`);
  process.exit(failed ? 1 : 0);
}

await main();
