/**
 * Where filebus spends its time: runs a scenario twice, once with every
 * filebus process under `node --cpu-prof` and once under `strace -c -f`,
 * and prints the top self-time functions and the system calls per chunk of
 * the producer and the consumers.
 *
 *   npx tsx bench/profile.ts [bp|mc|small|fan64|lossy ...] [--dist DIR] [--out DIR] [--no-strace]
 *
 * bp     back-pressure, 1 consumer, --block-size 1 MiB, 256 MiB from a file (case 1)
 * mc     multicast, 2 consumers, --block-size 1 MiB, 256 MiB from a file (case 2)
 * small  multicast, 2 consumers, --block-size 4096, 16 MiB from a file (case 3)
 * fan64  multicast, 64 consumers, 64 KiB blocks, 8 MiB from a file (case 7; takes minutes)
 * lossy  lossy, 4 consumers, 4 KiB chunks written at 1,000/s for 3 s (case 6)
 *
 * Profiles, strace tables and a summary (profile.json, profile.md) go to
 * --out (default bench/tmp/profile). Needs strace for the second run.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { summarizeProfile, parseStraceSummary, type ProfileSummary, type SyscallCount } from './lib/cpuprofile.js';
import { FULL, type Ctx } from './lib/context.js';
import { createWorkspace } from './lib/env.js';
import { snapshotFilebus, type Impl, type Mode } from './lib/impl.js';
import { Inputs } from './lib/input.js';
import { completeStream, finish, openFilebus, removeSession, shq, type Session, type Stdin } from './lib/pipelines.js';
import { killAll } from './lib/procs.js';
import { fmt, Report } from './lib/report.js';
import { formatBytes, MiB } from './lib/stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');

interface Scenario {
  readonly mode: Mode;
  readonly consumers: number;
  readonly blockSize: number;
  readonly bytes: number;
  readonly lossySeconds?: number;
  readonly title: string;
}

const SCENARIOS: Record<string, Scenario> = {
  bp: { mode: 'back-pressure', consumers: 1, blockSize: MiB, bytes: 256 * MiB, title: 'back-pressure, 1 consumer, 1 MiB blocks, 256 MiB' },
  mc: { mode: 'multicast', consumers: 2, blockSize: MiB, bytes: 256 * MiB, title: 'multicast, 2 consumers, 1 MiB blocks, 256 MiB' },
  small: { mode: 'multicast', consumers: 2, blockSize: 4096, bytes: 16 * MiB, title: 'multicast, 2 consumers, 4 KiB blocks, 16 MiB' },
  fan64: { mode: 'multicast', consumers: 64, blockSize: 65536, bytes: 8 * MiB, title: 'multicast, 64 consumers, 64 KiB blocks, 8 MiB (case 7; slow: minutes)' },
  lossy: { mode: 'lossy', consumers: 4, blockSize: 4096, bytes: 0, lossySeconds: 3, title: 'lossy, 4 consumers, 4 KiB chunks at 1,000/s for 3 s' },
};

interface RoleReport {
  readonly role: string;
  readonly pid: number;
  readonly profile: ProfileSummary | undefined;
  readonly syscalls: SyscallCount[];
}

function wrapStrace(base: Impl, prefix: string): Impl {
  // One strace table per process: $$ is the wrapper's pid, which strace keeps.
  const script = `exec strace -f -c -o "$0.$$.txt" ${base.command.map(shq).join(' ')} "$@"`;
  return { ...base, command: ['bash', '-c', script, prefix] };
}

async function runScenario(ctx: Ctx, name: string, s: Scenario, dir: string, strace: boolean): Promise<{ session: Session; chunks: number | undefined; wallS: number }> {
  const impl = strace ? wrapStrace(ctx.filebus, path.join(dir, 'strace-consumer')) : ctx.filebus;
  const producerImpl = strace ? wrapStrace(ctx.filebus, path.join(dir, 'strace-producer')) : ctx.filebus;
  let stdin: Stdin;
  if (s.mode === 'lossy') {
    const writer = path.join(HERE, 'lib', 'paced-writer.ts');
    stdin = { feed: `${shq(process.execPath)} --import ${shq(import.meta.resolve('tsx'))} ${shq(writer)} ${1000 * (s.lossySeconds ?? 3)} 1000` };
  } else {
    stdin = { file: ctx.inputs.get(s.bytes).path };
  }
  const session = await openFilebus(ctx, {
    impl, producerImpl, mode: s.mode, consumers: s.consumers, blockSize: s.blockSize, busBase: ctx.ws.tmpfs, stdin, label: `profile ${name}`,
  });
  if (s.mode === 'lossy') {
    await session.producer!.done;
    await delay(500);
    // SIGINT to the wrapper would stop strace; stop filebus itself (the wrapper's child) instead.
    for (const c of session.consumers) {
      const pids = strace ? descendants(c.pid) : [c.pid];
      for (const pid of pids) { try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ } }
      c.killedByUs = true;
    }
    const { end } = await finish(session, 60_000);
    removeSession(session);
    return { session, chunks: 1000 * (s.lossySeconds ?? 3), wallS: Number(end - session.start) / 1e9 };
  }
  const result = await completeStream(ctx, session, ctx.inputs.get(s.bytes));
  return { session, chunks: result.chunks, wallS: result.wallS };
}

/** Node processes below a wrapper (bash → strace → node). */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number): void => {
    let kids: number[] = [];
    try {
      for (const tid of fs.readdirSync(`/proc/${p}/task`)) {
        const t = fs.readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8').trim();
        if (t) kids = kids.concat(t.split(/\s+/).map(Number));
      }
    } catch { /* gone */ }
    for (const k of kids) {
      try {
        if (fs.readFileSync(`/proc/${k}/comm`, 'utf8').trim() === 'node') out.push(k);
      } catch { /* gone */ }
      walk(k);
    }
  };
  walk(pid);
  return out;
}

function profilesByPid(dir: string): Map<number, string> {
  const map = new Map<number, string>();
  if (!fs.existsSync(dir)) return map;
  for (const f of fs.readdirSync(dir)) {
    const m = /^CPU\.\d+\.\d+\.(\d+)\.\d+\.\d+\.cpuprofile$/.exec(f);
    if (m) map.set(Number(m[1]), path.join(dir, f));
  }
  return map;
}

function addSyscalls(list: SyscallCount[][]): SyscallCount[] {
  const map = new Map<string, { calls: number; errors: number; seconds: number }>();
  for (const l of list) for (const c of l) {
    const e = map.get(c.name) ?? { calls: 0, errors: 0, seconds: 0 };
    e.calls += c.calls; e.errors += c.errors; e.seconds += c.seconds;
    map.set(c.name, e);
  }
  return [...map].map(([name, e]) => ({ name, ...e })).sort((a, b) => b.calls - a.calls);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let out = path.join(HERE, 'tmp', 'profile');
  let dist = path.join(REPO, 'dist');
  const names: string[] = [];
  let noStrace = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--out') out = path.resolve(args[++i] ?? '.');
    else if (a === '--dist') dist = path.resolve(args[++i] ?? '.');
    else if (a === '--no-strace') noStrace = true;
    else if (SCENARIOS[a]) names.push(a);
    else throw new Error(`unknown argument ${a}; scenarios: ${Object.keys(SCENARIOS).join(', ')}`);
  }
  if (names.length === 0) names.push(...Object.keys(SCENARIOS));
  const hasStrace = !noStrace && spawnSync('strace', ['-V']).status === 0;
  const log = (line: string): void => { process.stderr.write(`${line}\n`); };
  fs.mkdirSync(out, { recursive: true });
  const snapshot = path.join(HERE, 'tmp', `filebus-profile-${process.pid}`);
  const filebus = await snapshotFilebus(REPO, dist, snapshot);
  const ws = createWorkspace(log);
  const report = new Report();
  const summary: Record<string, unknown> = {};
  const md: string[] = [];
  try {
    for (const name of names) {
      const s = SCENARIOS[name]!;
      const dir = path.join(out, name);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(path.join(dir, 'cpu'), { recursive: true });
      const base = { quick: false, sizes: FULL, repo: REPO, ws, inputs: new Inputs(ws.inputs), filebus, reference: undefined, report, log };
      log(`${name}: ${s.title}: --cpu-prof run`);
      const prof = await runScenario({ ...base, cpuProfDir: path.join(dir, 'cpu') }, name, s, dir, false);
      const files = profilesByPid(path.join(dir, 'cpu'));
      const roles: RoleReport[] = [];
      const roleOf = (i: number): string => (prof.session.procs[i] === prof.session.producer ? 'producer' : `consumer ${i + 1}`);
      // A producer fed through bash (lossy) is that bash's child: its profile is the one left over.
      const matched = new Set(prof.session.procs.map((p) => files.get(p.pid)).filter((f): f is string => f !== undefined));
      const leftover = [...files.values()].filter((f) => !matched.has(f));
      prof.session.procs.forEach((p, i) => {
        const file = files.get(p.pid) ?? (p === prof.session.producer && leftover.length === 1 ? leftover[0] : undefined);
        roles.push({ role: roleOf(i), pid: p.pid, profile: file ? summarizeProfile(file) : undefined, syscalls: [] });
      });
      let straced: { chunks: number | undefined; wallS: number } | undefined;
      const syscalls: Record<string, SyscallCount[]> = {};
      if (hasStrace) {
        log(`${name}: strace -c -f run`);
        straced = await runScenario({ ...base, cpuProfDir: undefined }, name, s, dir, true);
        const tables = fs.readdirSync(dir).filter((f) => f.startsWith('strace-'));
        syscalls['producer'] = addSyscalls(tables.filter((f) => f.startsWith('strace-producer')).map((f) => parseStraceSummary(path.join(dir, f))));
        syscalls['consumers (all)'] = addSyscalls(tables.filter((f) => f.startsWith('strace-consumer')).map((f) => parseStraceSummary(path.join(dir, f))));
      }
      const chunks = prof.chunks ?? straced?.chunks;
      summary[name] = { scenario: s, chunks, wallS: prof.wallS, stracedWallS: straced?.wallS, roles, syscalls };

      md.push(`## ${name}: ${s.title}`, '');
      md.push(`${chunks ?? '?'} chunks${s.bytes ? ` (mean ${formatBytes(Math.round(s.bytes / (chunks ?? 1)))})` : ''}; wall ${fmt(prof.wallS)} s with --cpu-prof` +
        (straced ? `, ${fmt(straced.wallS)} s under strace` : ''), '');
      for (const r of roles) {
        if (!r.profile) { md.push(`### ${r.role}: no profile`, ''); continue; }
        const p = r.profile;
        md.push(`### ${r.role}: busy ${fmt(p.busyMs)} ms of ${fmt(p.totalMs)} ms sampled` + (chunks ? ` (${fmt((p.busyMs * 1000) / chunks)} µs busy per chunk)` : ''), '');
        md.push(`areas (ms): ${Object.entries(p.areas).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}`, '');
        md.push('| self ms | share of busy | function | where |', '| ---: | ---: | --- | --- |');
        for (const t of p.top) md.push(`| ${fmt(t.selfMs)} | ${fmt(t.share * 100)}% | ${t.name} | ${t.where} |`);
        md.push('');
      }
      for (const [role, list] of Object.entries(syscalls)) {
        md.push(`### system calls, ${role}${chunks ? ', per chunk' : ''}`, '');
        md.push('| syscall | calls | errors | per chunk |', '| --- | ---: | ---: | ---: |');
        for (const c of list.slice(0, 15)) md.push(`| ${c.name} | ${c.calls} | ${c.errors} | ${chunks ? fmt(c.calls / chunks) : '-'} |`);
        md.push('');
      }
    }
  } finally {
    killAll();
    ws.cleanup();
    fs.rmSync(snapshot, { recursive: true, force: true });
  }
  fs.writeFileSync(path.join(out, 'profile.json'), `${JSON.stringify(summary, null, 2)}\n`);
  fs.writeFileSync(path.join(out, 'profile.md'), `${md.join('\n')}\n`);
  process.stdout.write(`${md.join('\n')}\n`);
  if (report.failures.length) {
    process.stdout.write(`failures:\n${report.failures.join('\n')}\n`);
    process.exitCode = 1;
  }
  process.stdout.write(`wrote ${path.join(out, 'profile.md')}\n`);
}

main().catch((error: unknown) => {
  killAll();
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
