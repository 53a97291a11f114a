/**
 * The filebus benchmark suite: `npm run bench [-- options]`.
 *
 *   --quick        smaller inputs, one repetition (under a minute); results go to bench/tmp/
 *   --only 1,4     run only these cases, by number or name (e.g. --only back-pressure-throughput,4);
 *                  results go to bench/tmp/ unless --out is given
 *   --reps N       repetitions of the key cases 1 to 4 (default 3, case 1 5, quick 1)
 *   --out DIR      where results.json, results.md and bench.svg go
 *   --cpu-prof DIR run every filebus process with node --cpu-prof, profiles into DIR
 *   --dist DIR     the filebus build to measure (default: dist/); it is copied first, so a
 *                  rebuild by someone else during the run cannot pull it away
 *   --commit REV   build filebus as it is at commit REV (git archive + tsc, in bench/tmp/)
 *                  and measure that instead of dist/
 *
 * A full run writes bench/results.json, bench/results.md and docs/bench.svg.
 * Set FILEBUS_REFERENCE to another filebus executable to run it side by
 * side (it is skipped where it has no --multicast).
 *
 * Exit status: 0 when every output was right and every process succeeded,
 * whether or not the targets were met; 1 otherwise; 2 for bad options.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { latencyPerMode, multicastScale } from './cases/latency.js';
import { lossyMisses } from './cases/lossy.js';
import { peakMemory } from './cases/memory.js';
import { backPressureThroughput, multicastFanOut, smallChunkRate } from './cases/throughput.js';
import { FULL, QUICK, type Ctx, type Sizes } from './lib/context.js';
import { createWorkspace, machineFacts, type Workspace } from './lib/env.js';
import { buildCommit, referenceImpl, snapshotFilebus } from './lib/impl.js';
import { Inputs } from './lib/input.js';
import { killAll, liveCount } from './lib/procs.js';
import { markdownTable, Report, textTable } from './lib/report.js';
import { drawSvg } from './lib/svg.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');

interface Options {
  quick: boolean;
  only: Set<number> | undefined;
  reps: number | undefined;
  out: string | undefined;
  cpuProf: string | undefined;
  dist: string | undefined;
  commit: string | undefined;
}

function usage(message: string): never {
  process.stderr.write(`bench: ${message}\nusage: npm run bench -- [--quick] [--only 1,latency-per-mode,...] [--reps N] [--out DIR] [--cpu-prof DIR] [--dist DIR | --commit REV]\n`);
  process.exit(2);
}

function parseOptions(argv: string[]): Options {
  const o: Options = { quick: false, only: undefined, reps: undefined, out: undefined, cpuProf: undefined, dist: undefined, commit: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => argv[++i] ?? usage(`${arg} needs a value`);
    if (arg === '--quick') o.quick = true;
    else if (arg === '--only') {
      o.only = new Set(value().split(',').map((word) => {
        const c = CASES.find((k) => String(k.id) === word || k.name === word);
        return c?.id ?? usage(`--only takes case numbers 1 to ${CASES.length} or names (${CASES.map((k) => k.name).join(', ')}), not ${JSON.stringify(word)}`);
      }));
    } else if (arg === '--reps') {
      o.reps = Number(value());
      if (!Number.isInteger(o.reps) || o.reps < 1) usage('--reps takes a positive integer');
    } else if (arg === '--out') o.out = path.resolve(value());
    else if (arg === '--cpu-prof') o.cpuProf = path.resolve(value());
    else if (arg === '--dist') o.dist = path.resolve(value());
    else if (arg === '--commit') o.commit = value();
    else if (arg === '--help' || arg === '-h') usage('options');
    else usage(`unknown option ${arg}`);
  }
  return o;
}

/**
 * The cases in the order they run: a number (docs/performance.md and the
 * result rows refer to it), a name saying what it measures (the log,
 * results.json and --only use it), a title, and the function that runs it.
 */
interface BenchCase {
  readonly id: number;
  readonly name: string;
  readonly title: string;
  readonly run: (ctx: Ctx) => Promise<void>;
}

const CASES: readonly BenchCase[] = [
  { id: 1, name: 'back-pressure-throughput', title: 'throughput, back-pressure, 1 producer 1 consumer, tmpfs and disk', run: backPressureThroughput },
  { id: 2, name: 'multicast-fan-out', title: 'throughput, multicast fan-out vs tee', run: multicastFanOut },
  { id: 3, name: 'small-chunk-rate', title: 'small chunks, 4 KiB multicast to 2 consumers', run: smallChunkRate },
  { id: 4, name: 'latency-per-mode', title: 'latency per mode vs cat', run: latencyPerMode },
  { id: 5, name: 'peak-memory', title: 'peak memory while streaming', run: peakMemory },
  { id: 6, name: 'lossy-misses', title: 'lossy mode: what 4 consumers miss at 1,000 chunks/s', run: lossyMisses },
  { id: 7, name: 'multicast-scale', title: 'scale: multicast to 1 .. 64 consumers', run: multicastScale },
];

function sizesFor(o: Options): Sizes {
  const base = o.quick ? QUICK : FULL;
  return o.reps === undefined ? base : { ...base, reps: o.reps, bpReps: o.reps };
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const partial = options.quick || options.only !== undefined;
  const outDir = options.out ?? (partial ? path.join(HERE, 'tmp') : undefined);
  const jsonPath = outDir ? path.join(outDir, 'results.json') : path.join(HERE, 'results.json');
  const mdPath = outDir ? path.join(outDir, 'results.md') : path.join(HERE, 'results.md');
  const svgPath = outDir ? path.join(outDir, 'bench.svg') : path.join(REPO, 'docs', 'bench.svg');
  const started = new Date();
  const t0 = Date.now();
  const log = (line: string): void => {
    process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
  };

  const reference = referenceImpl();
  if (options.dist && options.commit) usage('--dist and --commit both name the build to measure; give one');
  const built = options.commit ? buildCommit(REPO, options.commit, path.join(HERE, 'tmp')) : undefined;
  const buildRoot = built?.root ?? REPO;
  const dist = options.dist ?? path.join(buildRoot, 'dist');
  const snapshot = path.join(HERE, 'tmp', `filebus-${process.pid}`);
  let ws: Workspace | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    log(`${signal}: stopping`);
    killAll();
    ws?.cleanup();
    fs.rmSync(snapshot, { recursive: true, force: true });
    process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const filebus = await snapshotFilebus(buildRoot, dist, snapshot);
  if (built) log(`measuring commit ${built.commit}, built in ${built.root}`);
  ws = createWorkspace(log);
  const report = new Report();
  if (options.cpuProf) fs.mkdirSync(options.cpuProf, { recursive: true });
  const ctx: Ctx = {
    quick: options.quick,
    sizes: sizesFor(options),
    repo: REPO,
    ws,
    inputs: new Inputs(ws.inputs),
    filebus,
    reference,
    report,
    cpuProfDir: options.cpuProf,
    log,
  };
  const machine = machineFacts(REPO, ws);
  log(`filebus benchmark (${options.quick ? 'quick' : 'full'}): ${machine.nproc} CPUs, node ${machine.node}, load ${machine.loadAverageAtStart.join(' ')}`);
  log(`buses: tmpfs ${ws.tmpfs} (${machine.mounts['tmpfs']?.fstype}), disk ${ws.disk} (${machine.mounts['disk']?.fstype})`);
  if (reference) log(`reference: ${reference.label}`);
  const timings: Record<string, number> = {};
  try {
    for (const c of CASES) {
      if (options.only && !options.only.has(c.id)) continue;
      const start = Date.now();
      log(`case ${c.id} (${c.name}): ${c.title}`);
      report.caseName = c.name;
      try {
        await c.run(ctx);
      } catch (error) {
        report.fail(`case ${c.id}: ${(error as Error).stack ?? String(error)}`);
        killAll();
      }
      timings[`${c.id} ${c.name}`] = (Date.now() - start) / 1000;
      if (liveCount() > 0) {
        report.fail(`case ${c.id} left ${liveCount()} processes running`);
        killAll();
      }
    }
  } finally {
    killAll();
    ws.cleanup();
    fs.rmSync(snapshot, { recursive: true, force: true });
  }

  const durationS = (Date.now() - t0) / 1000;
  const subtitle = `${options.quick ? 'quick run' : 'full run'} ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC — ` +
    `filebus ${built ? built.commit.slice(0, 7) : `${machine.filebusCommit?.slice(0, 7) ?? '?'}${machine.filebusDirty ? '+dirty' : ''}`} — ` +
    `${machine.nproc} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.kernel}, node ${machine.node}; shared machine, medians of ${ctx.sizes.reps} (case 1: ${ctx.sizes.bpReps})`;
  const results = {
    suite: 'filebus bench',
    quick: options.quick,
    only: options.only ? [...options.only] : undefined,
    command: process.argv.slice(2),
    started: started.toISOString(),
    durationS,
    caseSeconds: timings,
    machine: { ...machine, loadAverageAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100) },
    filebusBuild: built ? { commit: built.commit, dist } : { dist, note: 'the build found in dist/ (may include uncommitted changes; see machine.filebusDirty)' },
    reference: reference ? { command: reference.command, skipped: 'multicast cases (cases 2, 3, 7, multicast parts of 4 and 5): it has no --multicast' } : null,
    sizes: { ...ctx.sizes, scaleBytes: Object.fromEntries(ctx.sizes.scaleConsumers.map((n) => [n, ctx.sizes.scaleBytes(n)])) },
    rows: report.rows,
    failures: report.failures,
    warnings: report.warnings,
    chart: { throughput: report.throughput, latency: report.latency },
    details: report.details,
  };
  fs.mkdirSync(path.dirname(jsonPath), { recursive: true });
  fs.writeFileSync(jsonPath, `${JSON.stringify(results, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
  fs.writeFileSync(mdPath, `${markdownTable(report.rows)}\n`);
  fs.mkdirSync(path.dirname(svgPath), { recursive: true });
  fs.writeFileSync(svgPath, drawSvg(report.throughput, report.latency, subtitle));

  process.stdout.write(`\n${textTable(report.rows)}\n\n`);
  process.stdout.write(`machine: ${machine.nproc} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, ${machine.kernel}, node ${machine.node}\n`);
  if (process.env['NODE_EXTRA_CA_CERTS']) process.stdout.write('NODE_EXTRA_CA_CERTS is set here and was unset for every process the bench started (see bench/lib/procs.ts)\n');
  process.stdout.write(`buses: tmpfs: ${ws.tmpfsHow}; disk: ${machine.mounts['disk']?.fstype} (${machine.mounts['disk']?.source})\n`);
  if (reference) process.stdout.write(`reference: ${reference.label}; multicast cases skipped for it (it has no --multicast)\n`);
  process.stdout.write(`wrote ${path.relative(process.cwd(), jsonPath)}, ${path.relative(process.cwd(), mdPath)}, ${path.relative(process.cwd(), svgPath)} in ${durationS.toFixed(1)} s\n`);
  if (report.warnings.length > 0) {
    process.stdout.write(`\nwarnings (filebus bugs met on the way; not failures of the benchmark):\n${report.warnings.map((w) => `  - ${w}`).join('\n')}\n`);
  }
  const met = report.rows.filter((r) => r.met === true).length;
  const missed = report.rows.filter((r) => r.met === false).length;
  process.stdout.write(`targets: ${met} met, ${missed} missed (reported, not failed)\n`);
  if (report.failures.length > 0) {
    process.stdout.write(`\n${report.failures.length} FAILURE(S): wrong output or a failed process:\n${report.failures.map((f) => `  - ${f}`).join('\n')}\n`);
    return 1;
  }
  return 0;
}

main().then((code) => process.exit(code), (error: unknown) => {
  killAll();
  process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
