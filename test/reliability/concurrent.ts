/**
 * The concurrent crash drill: one run is one bus, several producers at once
 * and several consumers, with faults injected into them, and a verdict on
 * what every consumer emitted measured against what the mode promises.
 * Shared by concurrent-crash-*.test.ts (CI) and the soak command
 * (test/soak/soak.ts); it does not depend on vitest: a run returns its
 * figures and a list of defects, each named in one line.
 *
 * A run:
 * - C consumers start first (multicast: one anonymous bystander and C-1
 *   named consumers, all registered before any producer starts);
 * - P producer slots run side by side. Each slot runs `producerFaults`
 *   producers one after another, each with its own tag, fed through a FIFO
 *   that is never closed (so a faulted producer never reaches end of input
 *   and never writes an end marker), each given one fault: SIGKILL injected
 *   by strace at the K-th call of one syscall of a publish (`rename`,
 *   `link`, `openat`, `unlink`, `flock`, `pwrite64`; K random), a SIGKILL at
 *   a random instant, a SIGSTOP/SIGCONT pause, or ENOSPC injected into its
 *   K-th `pwrite64`. A producer whose fault did not end it by the time its
 *   input is published is SIGKILLed;
 * - then the P slots start their last producers at the same instant, with
 *   a short input, and close their input: P producers reach end of input
 *   together (back-pressure: P end markers at once; multicast: the last of
 *   them must write the one end marker);
 * - consumers get faults too (back-pressure and named multicast consumers:
 *   the same kinds, a killed one is restarted; lossy consumers and the
 *   multicast bystander: pauses only), and must end as the mode says.
 *
 * Anything still waiting after `endPhaseMs` is a hang, reported with the
 * state of the bus and the run's seed.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/cli.js';
import { startFilebus, type Proc, type Exit } from '../helpers/procs.js';
import { delay } from '../helpers/wait.js';
import { segments, segmentIntact, registrations, cursorIds } from '../helpers/bus-layout.js';
import { chunkBytes, chunk, checkChunk, ChunkReader, type Format, type ChunkRef } from '../helpers/records.js';
import { BlockFeeder, rng } from '../helpers/reliability.js';

export type Mode = 'lossy' | 'back-pressure' | 'multicast';
export const MODES: readonly Mode[] = ['lossy', 'back-pressure', 'multicast'];
export type FaultKind = 'strace-kill' | 'timed-kill' | 'stop' | 'enospc';

export const FORMAT: Format = { recordSize: 128, perChunk: 4 }; // 512-byte chunks

export interface DrillConfig {
  readonly mode: Mode;
  readonly seed: number;
  /** Producer slots running side by side. */
  readonly producers: number;
  readonly consumers: number;
  /** Faulted producers per slot before its last producer. */
  readonly producerFaults: number;
  /** Faulted consumer processes per run (lossless modes; lossy consumers only get pauses). */
  readonly consumerFaults: number;
  readonly kinds: readonly FaultKind[];
  /** Chunks fed to each faulted producer. */
  readonly inputChunks: number;
  /** Chunks of each last producer. */
  readonly finalChunks: number;
  /** After the last producers start, everything must have ended within this. */
  readonly endPhaseMs: number;
  /** Back-pressure: how many times P last producers end together (a new stream follows each end). */
  readonly endRounds?: number;
}

/** The CI drill's run: 3 producers (3 faulted each, then 3 ending together), 3 consumers. */
export function drillConfig(mode: Mode, seed: number): DrillConfig {
  return {
    mode,
    seed,
    producers: 3,
    consumers: 3,
    producerFaults: 3,
    consumerFaults: mode === 'lossy' ? 2 : 3,
    // Mostly injected kills: they land between the steps of a publish, which a timed kill almost never does.
    kinds: ['strace-kill', 'strace-kill', 'strace-kill', 'strace-kill', 'timed-kill', 'stop', 'enospc'],
    inputChunks: 300,
    finalChunks: 10,
    endPhaseMs: 30_000,
    endRounds: 2,
  };
}

export interface RunResult {
  mode: Mode;
  seed: number;
  faults: number;
  faultsByKind: Record<string, number>;
  /** Where strace's injected SIGKILLs (and ENOSPCs) landed: `syscall what`. */
  injectedAt: Record<string, number>;
  /** Injections whose K-th call never came (the producer was killed once idle instead). */
  notFired: Record<string, number>;
  producers: number;
  producersCompleted: number;
  records: number;
  lost: number;
  /** Records repeated where the mode does not allow it. */
  repeated: number;
  /** Whole chunks repeated at a consumer kill, as the lossless modes allow (records). */
  allowedRepeats: number;
  torn: number;
  /** Back-pressure: end markers removed by a consumer killed before it could exit. */
  markersTakenByKilledConsumers: number;
  /** Multicast: segment numbers found on disk under more than one file. */
  reusedNumbers: number;
  hung: boolean;
  defects: string[];
  seconds: number;
}

const LETTER: Record<Mode, string> = { lossy: 'L', 'back-pressure': 'B', multicast: 'M' };
const MODE_ARGS: Record<Mode, string[]> = { lossy: [], 'back-pressure': ['--back-pressure'], multicast: ['--multicast'] };
/** Syscalls a publish (or a take, or a cursor update) goes through, by role and mode. */
const SYSCALLS: Record<'producer' | 'consumer', Record<Mode, readonly string[]>> = {
  producer: {
    lossy: ['rename', 'rename', 'link', 'openat', 'unlink', 'flock', 'pwrite64'],
    'back-pressure': ['rename', 'rename', 'openat', 'flock', 'pwrite64', 'unlink'],
    // The steps of a publish that change what is on disk come twice: they are where a kill can leave state behind.
    // link the most: a kill before it leaves segments renamed into place and FILE not re-linked to them.
    multicast: ['rename', 'rename', 'link', 'link', 'link', 'openat', 'flock', 'pwrite64', 'unlink'],
  },
  consumer: {
    lossy: [],
    'back-pressure': ['rename', 'flock', 'openat', 'unlink', 'link'],
    multicast: ['pwrite64', 'openat', 'flock', 'unlink'],
  },
};
/** K is drawn from 1..SPAN (plus, for openat, the calls node makes at start-up before it touches the bus). */
// A producer under strace fed 300 chunks calls link about 6 times (publishes come in batches, FILE is re-linked once
// per batch) and flock about 20.
const SPAN: Record<string, number> = { rename: 60, link: 5, openat: 12, unlink: 2, flock: 16, pwrite64: 60 };

export function pad20(n: number): string {
  return String(n).padStart(20, '0');
}

// ------------------------------------------------------------------ strace

let straceChecked: boolean | undefined;
export function haveStrace(): boolean {
  if (straceChecked === undefined) {
    try { execFileSync('strace', ['-V'], { stdio: 'ignore' }); straceChecked = true; } catch { straceChecked = false; }
  }
  return straceChecked;
}

/** The tracee of a strace process (its first child), to signal node itself. */
function traceeOf(stracePid: number): number | undefined {
  try {
    const kids = fs.readFileSync(`/proc/${stracePid}/task/${stracePid}/children`, 'latin1').trim().split(/\s+/).filter(Boolean);
    return kids.length > 0 ? Number(kids[0]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Where an injection landed: the last call of the traced syscall by the main
 * thread in strace's log, as `syscall what` (what: the bus file it concerns).
 */
export function injectionPoint(log: string, syscall: string, bus: string): string {
  const lines = log.split('\n');
  const main = lines[0]?.split(/\s+/)[0];
  let last: string | undefined;
  for (const line of lines) {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m || m[1] !== main) continue;
    if (m[2]!.startsWith(`${syscall}(`)) last = m[2];
  }
  if (!last) return `${syscall} ?`;
  const base = path.basename(bus);
  const kind = (p: string): string => {
    const name = p.startsWith(path.dirname(bus)) ? p.slice(path.dirname(bus).length + 1) : p;
    if (name === base) return 'FILE';
    if (name === '') return 'directory';
    if (name === `${base}.lock`) return 'FILE.lock';
    if (name.startsWith(`${base}.segments/`)) return 'segment';
    if (name.startsWith(`${base}.consumers/`)) return 'cursor';
    if (name.startsWith(`${base}.producers/`)) return name.endsWith('.new') ? 'registration temp' : 'registration';
    if (name.endsWith('.taken')) return '.taken';
    if (name === `.${base}.spare`) return '.spare';
    if (name.endsWith('.recent')) return 'ring';
    if (name.startsWith(`.${base}.`) && name.endsWith('.new')) return 'temp';
    return name.includes('/') ? `other(${name})` : name;
  };
  const paths = [...last.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
  if (syscall === 'flock') return `flock ${/LOCK_(EX|SH|UN)/.exec(last)?.[0] ?? '?'}`;
  if (syscall === 'pwrite64') {
    const data = paths[0] ?? '';
    return `pwrite64 ${data.startsWith('{') ? 'registration' : /^\d{20} /.test(data) ? 'cursor' : 'chunk data'}`;
  }
  if (syscall === 'openat') return `openat${/O_CREAT/.test(last) ? ' O_CREAT' : ''} ${kind(paths[0] ?? '?')}`;
  if (paths.length >= 2) return `${syscall} ${kind(paths[0]!)}→${kind(paths[1]!)}`;
  return `${syscall} ${kind(paths[0] ?? '?')}`;
}

/** Main-thread openat calls a process makes before it touches the bus (module loading), per role and mode. */
const openatOffset = new Map<string, number>();
async function calibrateOpenat(role: 'producer' | 'consumer', mode: Mode, args: (bus: string) => string[], feed: boolean): Promise<number> {
  const key = `${role}/${mode}`;
  const known = openatOffset.get(key);
  if (known !== undefined) return known;
  const dir = tempDir('filebus-calibrate-');
  const bus = path.join(dir, 'bus');
  const log = path.join(dir, 'strace.log');
  // Started as the drill starts it (same arguments, a FIFO on stdin): module loading differs with both.
  const feeder = feed ? new BlockFeeder(dir, 'fifo', (i) => chunk(FORMAT, 'X00000', i)) : undefined;
  const proc = startFilebus(args(bus), { stdin: feeder ? { fd: feeder.readFd } : 'ignore', prefix: ['strace', '-f', '-o', log, '-e', 'trace=openat', process.execPath] });
  feeder?.releaseReadEnd();
  feeder?.pump(4);
  // Wait for the first file it creates in the bus's directory (a registration, a cursor, the lock),
  // or 5 s; count the main thread's openat calls before it (or before its first look at the bus).
  const created = new RegExp(`^\\d+\\s+openat\\([^"]*"${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[^"]*", [^)]*O_CREAT`);
  const deadline = Date.now() + 5000;
  let offset = 60;
  try {
    let text = '';
    while (Date.now() < deadline) {
      await delay(50);
      try { text = fs.readFileSync(log, 'latin1'); } catch { continue; }
      if (text.split('\n').some((line) => created.test(line))) break;
    }
    const lines = text.split('\n');
    const main = lines[0]?.split(/\s+/)[0];
    const mine = lines.filter((line) => line.startsWith(`${main} `) && line.includes('openat('));
    let at = mine.findIndex((line) => created.test(line));
    if (at < 0) at = mine.findIndex((line) => line.includes(dir));
    if (at >= 0) offset = at;
  } finally {
    feeder?.close();
    await killTraced(proc);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  openatOffset.set(key, offset);
  return offset;
}

/** SIGKILLs a process started under strace (node first: strace 6.1 has no --kill-on-exit), or a plain one. */
async function killTraced(proc: Proc): Promise<Exit> {
  if (proc.running()) {
    const tracee = traceeOf(proc.pid);
    if (tracee !== undefined) { try { process.kill(tracee, 'SIGKILL'); } catch { /* gone */ } }
    try { proc.child.kill('SIGKILL'); } catch { /* gone */ }
  }
  return proc.exited;
}

function signalProc(proc: Proc, traced: boolean, signal: NodeJS.Signals): void {
  const pid = traced ? traceeOf(proc.pid) : proc.pid;
  if (pid !== undefined) { try { process.kill(pid, signal); } catch { /* gone */ } }
}

// ------------------------------------------------------------------- actors

interface Fault {
  kind: FaultKind;
  syscall?: string;
  when?: number;
  /** ms after spawn (timed kills, pauses). */
  at?: number;
  pauseMs?: number;
}

interface Actor {
  role: 'producer' | 'consumer';
  label: string;
  proc: Proc;
  traced: boolean;
  fault: Fault | undefined;
  log: string | undefined;
  exit?: Exit;
  endedAt?: number;
  /** Ended by a fault (SIGKILL, ENOSPC), not by finishing. */
  faulted: boolean;
  /** Ended by finishing its work (exit 0). */
  finished: boolean;
  reader?: ChunkReader;
  slot: number;
  tag?: string;
  feeder?: BlockFeeder;
}

class HangError extends Error {}

/** Every process and directory of the runs in progress, for stopping them all (the soak on SIGINT). */
const liveProcs = new Set<Proc>();
const liveDirs = new Set<string>();

/** SIGKILLs every process of the runs in progress (node itself for those under strace) and removes their buses. */
let stoppingAll = false;
export async function stopAllRuns(): Promise<void> {
  stoppingAll = true; // no restart of what is killed here
  await Promise.all([...liveProcs].map((p) => killTraced(p)));
  for (const d of liveDirs) fs.rmSync(d, { recursive: true, force: true });
}

export async function runDrill(cfg: DrillConfig): Promise<RunResult> {
  const t0 = Date.now();
  const random = rng(cfg.seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const { mode } = cfg;
  const dir = tempDir(`filebus-drill-${mode}-`);
  liveDirs.add(dir);
  const bus = path.join(dir, 'bus');
  const common = ['--filename', bus, ...MODE_ARGS[mode]];
  const size = chunkBytes(FORMAT);
  const kinds = cfg.kinds.filter((k) => (k !== 'strace-kill' && k !== 'enospc') || haveStrace());
  const res: RunResult = {
    mode, seed: cfg.seed, faults: 0, faultsByKind: {}, injectedAt: {}, notFired: {}, producers: 0, producersCompleted: 0, records: 0,
    lost: 0, repeated: 0, allowedRepeats: 0, torn: 0, markersTakenByKilledConsumers: 0, reusedNumbers: 0, hung: false, defects: [], seconds: 0,
  };
  const defect = (text: string): void => { if (!res.defects.includes(text)) res.defects.push(text); };
  const countFault = (kind: string): void => { res.faults += 1; res.faultsByKind[kind] = (res.faultsByKind[kind] ?? 0) + 1; };
  const actors: Actor[] = [];
  const producerArgs = [...common, '--block-size', String(size), ...(mode === 'multicast' ? ['--retain', 'all'] : []), 'producer'];
  const consumerArgs = (slot: number): string[] => {
    if (mode === 'lossy') return slot % 2 === 1 ? [...common, '--no-file-monitoring', '--sleep-interval', '0.005', 'consumer'] : [...common, 'consumer'];
    if (mode === 'multicast' && slot > 0) return [...common, '--name', `n${slot}`, 'consumer'];
    return [...common, 'consumer'];
  };
  const offsets = {
    producer: kinds.includes('strace-kill') ? await calibrateOpenat('producer', mode, (b) => producerArgs.map((x) => (x === bus ? b : x)), true) : 0,
    consumer: kinds.includes('strace-kill') && mode !== 'lossy'
      ? await calibrateOpenat('consumer', mode, (b) => consumerArgs(1).map((x) => (x === bus ? b : x)), false)
      : 0,
  };

  const nextSyscall = { producer: Math.floor(random() * 100), consumer: Math.floor(random() * 100) };
  const chooseFault = (role: 'producer' | 'consumer', allowed: readonly FaultKind[]): Fault | undefined => {
    const usable = kinds.filter((k) => allowed.includes(k)); // kinds may repeat a kind to weigh it
    if (usable.length === 0) return undefined;
    const kind = pick(usable);
    if (kind === 'strace-kill') {
      // In turn through the list (from a random start): the runs cover every step of a publish evenly.
      const list = SYSCALLS[role][mode];
      const syscall = list[(nextSyscall[role]++) % list.length]!;
      // SPAN is for 300 chunks: a producer fed fewer makes fewer calls.
      const span = role === 'producer' ? Math.max(1, Math.round((SPAN[syscall]! * cfg.inputChunks) / 300)) : SPAN[syscall]!;
      const when = 1 + Math.floor(random() * span) + (syscall === 'openat' ? offsets[role] : 0);
      return { kind, syscall, when };
    }
    if (kind === 'enospc') return { kind, syscall: 'pwrite64', when: 1 + Math.floor(random() * Math.min(30, cfg.inputChunks / 2)) };
    if (kind === 'timed-kill') return { kind, at: Math.floor(random() * 1500) };
    return { kind, at: Math.floor(random() * 1200), pauseMs: 20 + Math.floor(random() * 400) };
  };

  const spawnActor = (a: Omit<Actor, 'proc' | 'traced' | 'log' | 'faulted' | 'finished'>, args: string[], stdin?: number, onData?: (d: Buffer) => void): Actor => {
    const f = a.fault;
    const traced = f?.kind === 'strace-kill' || f?.kind === 'enospc';
    const log = traced ? path.join(dir, `strace.${actors.length}.log`) : undefined;
    const inject = f?.kind === 'enospc' ? `inject=pwrite64:error=ENOSPC:when=${f.when}` : `inject=${f?.syscall}:signal=KILL:when=${f?.when}`;
    const prefix = traced ? ['strace', '-f', '-o', log!, '-e', `trace=${f!.syscall}`, '-e', inject, process.execPath] : undefined;
    const proc = startFilebus(args, { stdin: stdin === undefined ? 'ignore' : { fd: stdin }, stdout: onData, prefix });
    liveProcs.add(proc);
    void proc.exited.then(() => liveProcs.delete(proc));
    const actor: Actor = { ...a, proc, traced, log, faulted: false, finished: false };
    actors.push(actor);
    if (f && (f.kind === 'timed-kill' || f.kind === 'stop')) {
      setTimeout(() => {
        if (!proc.running()) return;
        if (f.kind === 'timed-kill') {
          countFault('timed-kill');
          actor.faulted = true;
          void killTraced(proc);
        } else {
          countFault('stop');
          signalProc(proc, false, 'SIGSTOP');
          setTimeout(() => signalProc(proc, false, 'SIGCONT'), f.pauseMs);
        }
      }, f.at);
    }
    void proc.exited.then((exit) => {
      actor.exit = exit;
      actor.endedAt = Date.now();
      if (!traced || !log) return;
      const killed = exit.signal === 'SIGKILL' || exit.code === 137;
      // A kill by the test (idle, or the run ending) is not an injection that fired.
      if (f?.kind === 'strace-kill' && killed && !actor.faulted && !stopping) {
        actor.faulted = true;
        countFault('strace-kill');
        let text = '';
        try { text = fs.readFileSync(log, 'latin1'); } catch { /* none */ }
        const at = `${a.role} ${injectionPoint(text, f.syscall!, bus)}`;
        res.injectedAt[at] = (res.injectedAt[at] ?? 0) + 1;
      }
    });
    return actor;
  };

  /** Waits for `p`, or throws a HangError naming `what` once the run's end-phase budget is spent. */
  let hangDeadline = Number.POSITIVE_INFINITY;
  let endPhaseStart = Number.POSITIVE_INFINITY;
  const waitFor = async <T>(p: Promise<T>, what: string, ms?: number): Promise<T> => {
    const limit = Math.min(ms ?? Number.POSITIVE_INFINITY, hangDeadline - Date.now());
    if (!Number.isFinite(limit)) return p;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new HangError(what)), Math.max(0, limit)); })]);
    } finally {
      clearTimeout(timer);
    }
  };

  const tags = new Map<string, { completed: boolean; chunks: number }>();
  /** The highest chunk index of each tag a consumer has emitted. */
  const progress = new Map<string, number>();
  let consumerFaultsLeft = cfg.consumerFaults;
  let producersDone = false;
  let consumerEnds = 0;
  let stopping = false;
  const consumerSlots: Array<{ done: boolean; live: Actor | undefined; chain: Actor[] }> = [];

  // ---------------------------------------------------------- consumers
  const consumerKinds = (slot: number): readonly FaultKind[] => {
    if (mode === 'lossy' || (mode === 'multicast' && slot === 0)) return ['stop'];
    return mode === 'multicast' ? ['strace-kill', 'timed-kill', 'stop', 'enospc'] : ['strace-kill', 'timed-kill', 'stop'];
  };
  const startConsumer = (slot: number): Actor => {
    let fault: Fault | undefined;
    if (consumerFaultsLeft > 0 && !producersDone ? random() < 0.7 : false) {
      fault = chooseFault('consumer', consumerKinds(slot));
      if (fault) consumerFaultsLeft -= 1;
    }
    const reader = new ChunkReader(FORMAT, (ref) => { if (ref.index > (progress.get(ref.tag) ?? -1)) progress.set(ref.tag, ref.index); });
    const actor = spawnActor({ role: 'consumer', label: `consumer ${slot}${mode === 'multicast' && slot > 0 ? ` (n${slot})` : ''}`, fault, slot, reader },
      consumerArgs(slot), undefined, (d) => reader.push(d));
    const s = consumerSlots[slot] ?? (consumerSlots[slot] = { done: false, live: undefined, chain: [] });
    s.live = actor;
    s.chain.push(actor);
    void actor.proc.done.then((exit) => onConsumerExit(slot, actor, exit));
    return actor;
  };
  const onConsumerExit = (slot: number, actor: Actor, exit: Exit): void => {
    const s = consumerSlots[slot]!;
    if (s.live === actor) s.live = undefined;
    if (stopping || stoppingAll) return;
    const killed = exit.signal === 'SIGKILL' || exit.code === 137;
    const stderr = actor.proc.stderr();
    if (exit.code === 0 && !killed) {
      actor.finished = true;
      if (mode === 'lossy') defect(`${actor.label} exited 0: lossy consumers never end`);
      else if (mode === 'back-pressure') { consumerEnds += 1; s.done = true; ensureBackPressureConsumers(); }
      else s.done = true;
      return;
    }
    if (killed) actor.faulted = true;
    else if (actor.fault?.kind === 'enospc' && exit.code === 1 && /no space left on device/i.test(stderr)) {
      actor.faulted = true;
      countFault('enospc');
      res.injectedAt['consumer pwrite64 ENOSPC'] = (res.injectedAt['consumer pwrite64 ENOSPC'] ?? 0) + 1;
    } else {
      let why = '';
      const cursor = /cursor file (\S+) is corrupt/.exec(stderr)?.[1];
      try {
        if (cursor && fs.statSync(cursor).size === 0) why = ' (its cursor is empty: a run killed between creating it and writing its first record left it, and the name can never resume)';
      } catch { /* gone */ }
      defect(`${actor.label} failed (${JSON.stringify(exit)}): ${stderr.trim().split('\n')[0] ?? ''}${why}`);
      s.done = true; // not restarted: its failure is the finding, not a hang
      return;
    }
    if (!actor.faulted && !killed) return;
    if (mode === 'back-pressure') ensureBackPressureConsumers();
    else startConsumer(slot); // a named consumer resumes at its cursor
  };
  let bpSlots = 0;
  const ensureBackPressureConsumers = (): void => {
    if (stopping) return;
    const live = consumerSlots.filter((s) => s.live).length;
    const finals = [...tags.values()].filter((t) => t.completed).length;
    const want = producersDone ? Math.max(0, finals - consumerEnds) : cfg.consumers;
    for (let n = live; n < want; n++) startConsumer(bpSlots++);
  };

  // ------------------------------------------------------------ producers
  const tagOf = (slot: number, gen: number): string => `${LETTER[mode]}${slot}${String(gen).padStart(4, '0')}`;
  const startProducer = (slot: number, gen: number, fault: Fault | undefined, count: number): Actor => {
    if (stoppingAll) throw new Error('stopped');
    const tag = tagOf(slot, gen);
    tags.set(tag, { completed: false, chunks: count });
    const feeder = new BlockFeeder(dir, `fifo.${tag}`, (i) => chunk(FORMAT, tag, i));
    const actor = spawnActor({ role: 'producer', label: `producer ${tag}`, fault, slot, tag, feeder }, producerArgs, feeder.readFd);
    feeder.releaseReadEnd();
    res.producers += 1;
    // Fed a block every 2 ms (after a first few): publishes come in batches, interleaved with the other producers'.
    const started = Date.now();
    feeder.start(() => Math.min(count, 8 + Math.floor((Date.now() - started) / 2)));
    // closed, not exited: its stderr is read to the end by then.
    void actor.proc.done.then((exit) => {
      feeder.close();
      if (exit.code === 0 && exit.signal === null) {
        actor.finished = true;
        tags.get(tag)!.completed = true;
        res.producersCompleted += 1;
      } else if (actor.fault?.kind === 'enospc' && exit.code === 1) {
        actor.faulted = true;
        countFault('enospc');
        res.injectedAt[`producer ${actor.fault.when === 1 ? 'pwrite64 registration' : 'pwrite64'} ENOSPC`] =
          (res.injectedAt[`producer ${actor.fault.when === 1 ? 'pwrite64 registration' : 'pwrite64'} ENOSPC`] ?? 0) + 1;
        const line = actor.proc.stderr();
        if (!/^filebus: [^\n]*no space left on device[^\n]*\n$/i.test(line)) defect(`${actor.label}: ENOSPC not reported in one line: ${JSON.stringify(line.slice(0, 300))}`);
      } else if (!(exit.signal === 'SIGKILL' || exit.code === 137)) {
        defect(`${actor.label} failed (${JSON.stringify(exit)}): ${actor.proc.stderr().trim().split('\n')[0] ?? ''}`);
      }
    });
    return actor;
  };

  const runSlot = async (slot: number): Promise<void> => {
    await delay(slot * 150); // out of step, so one slot's kill meets the others publishing
    for (let gen = 0; gen < cfg.producerFaults; gen++) {
      const fault = chooseFault('producer', ['strace-kill', 'timed-kill', 'stop', 'enospc']);
      const a = startProducer(slot, gen, fault, cfg.inputChunks);
      // Its fault ends it, or it publishes its whole input and waits for more: then it is killed.
      // (Lossy consumers may miss its last chunk: then it is killed 1 s after it was fed everything.)
      const fed = (async () => {
        const notBefore = a.proc.startedAt + (a.fault?.at ?? 0) + (a.fault?.pauseMs ?? 0) + 50; // a timed fault has had its turn
        let allFedAt: number | undefined;
        const idle = (): boolean => {
          if (Date.now() < notBefore) return false;
          if ((progress.get(a.tag!) ?? -1) >= cfg.inputChunks - 1) return true;
          if (Date.now() - a.proc.startedAt > 15_000) return true;
          // Lossless consumers emit every chunk: wait for its last; lossy ones may miss it.
          if (mode !== 'lossy' || a.feeder!.fed < cfg.inputChunks) return false;
          allFedAt ??= Date.now();
          return Date.now() - allFedAt > 1000;
        };
        while (a.proc.running() && !idle()) await delay(5);
      })();
      await waitFor(Promise.race([a.proc.exited, fed]), `${a.label} (fault phase)`, 120_000);
      if (a.proc.running()) {
        if (!a.fault || a.fault.kind === 'stop') countFault('idle-kill');
        else {
          countFault('idle-kill (fault did not fire)');
          const at = `producer ${a.fault.kind === 'enospc' ? 'ENOSPC' : a.fault.syscall}#${a.fault.when} did not fire`;
          res.notFired[at] = (res.notFired[at] ?? 0) + 1;
        }
        a.faulted = true;
        await killTraced(a.proc);
      }
      await a.proc.done;
    }
  };

  const describeBus = (): string => {
    const out: string[] = [];
    try {
      for (const name of fs.readdirSync(dir).sort()) {
        if (name.startsWith('fifo.') || name.startsWith('strace.')) continue;
        const st = fs.statSync(path.join(dir, name));
        out.push(st.isDirectory() ? `${name}/ (${fs.readdirSync(path.join(dir, name)).length} entries)` : `${name} (${st.size} B)`);
      }
    } catch { /* gone */ }
    const live = actors.filter((a) => a.proc.running()).map((a) => a.label);
    let diagnosis = '';
    if (mode === 'back-pressure') {
      // Several consumers each holding an end marker, each waiting for the others' taken chunks.
      const markers = out.filter((e) => e.endsWith('.taken (0 B)')).length;
      if (markers > 1) diagnosis = `end-marker deadlock: ${markers} consumers each hold an end marker (.taken, 0 B) and wait for one another; `;
    }
    return `${diagnosis}live: ${live.join(', ') || 'none'}; bus: ${out.join(', ')}`;
  };

  try {
    try {
      // Consumers first; multicast ones registered before any producer.
      const initial = mode === 'back-pressure' ? 0 : cfg.consumers;
      for (let c = 0; c < initial; c++) startConsumer(c);
      if (mode === 'back-pressure') ensureBackPressureConsumers();
      if (mode === 'multicast') {
        const deadline = Date.now() + 60_000;
        while (cursorIds(bus).length < cfg.consumers) {
          if (Date.now() > deadline) throw new HangError('multicast consumers to register');
          // A consumer faulted while joining is restarted by onConsumerExit.
          await delay(10);
        }
      }
      await Promise.all(Array.from({ length: cfg.producers }, (_, s) => runSlot(s)));

      // The last producers, all at once; back-pressure: several rounds of them (a stream may follow an end).
      const rounds = mode === 'back-pressure' ? (cfg.endRounds ?? 1) : 1;
      let markersEaten = 0;
      for (let round = 0; round < rounds; round++) {
        hangDeadline = Date.now() + cfg.endPhaseMs;
        endPhaseStart = Date.now();
        if (round > 0) { producersDone = false; ensureBackPressureConsumers(); }
        const finals = Array.from({ length: cfg.producers }, (_, s) => startProducer(s, cfg.producerFaults + round, undefined, cfg.finalChunks));
        // Their input ends at one instant, once all of them run (registered) and have been fed everything:
        // they reach end of input together.
        const registered = (): number => {
          const pids = registrations(bus).map((r) => r.pid);
          return finals.filter((f) => pids.includes(traceeOf(f.proc.pid) ?? f.proc.pid)).length;
        };
        while (registered() < finals.length || finals.some((f) => f.feeder!.fed < cfg.finalChunks)) {
          await waitFor(delay(5), 'the last producers to register');
        }
        for (const f of finals) f.feeder!.close();
        for (const f of finals) {
          await waitFor(f.proc.done, `${f.label} (last producer) to finish`);
        }
        producersDone = true;
        if (mode === 'back-pressure') ensureBackPressureConsumers();

        if (mode === 'multicast') {
          while (consumerSlots.some((s) => !s.done)) {
            const waiting = consumerSlots.map((s, i) => (s.done ? undefined : `consumer ${i}`)).filter(Boolean).join(', ');
            await waitFor(delay(20), `${waiting} to end at the end marker`);
          }
        } else if (mode === 'back-pressure') {
          const finalsDone = [...tags.values()].filter((t) => t.completed).length;
          // A consumer killed between removing an end marker and exiting took it with it (no design can make those
          // two one step): once no marker is left anywhere on the bus, the markers missing are those, if that many
          // consumers were killed since the last producers started.
          const markersOnBus = (): number => {
            let n = 0;
            for (const name of fs.readdirSync(dir)) {
              if (name !== 'bus' && !name.endsWith('.taken')) continue;
              try { if (fs.statSync(path.join(dir, name)).size === 0) n += 1; else return Number.POSITIVE_INFINITY; } catch { /* gone */ }
            }
            return n;
          };
          let quietSince: number | undefined;
          while (consumerEnds + markersEaten < finalsDone) {
            if (markersOnBus() === 0 && consumerSlots.every((s) => !s.live || s.live.reader!.pending.length === 0)) {
              quietSince ??= Date.now();
              if (Date.now() - quietSince > 2000) {
                const eaten = finalsDone - consumerEnds - markersEaten;
                markersEaten += eaten;
                const killedLate = actors.filter((a) => a.role === 'consumer' && a.faulted && a.exit !== undefined && (a.endedAt ?? 0) >= endPhaseStart).length;
                res.markersTakenByKilledConsumers += eaten;
                if (eaten > killedLate) defect(`${eaten} end markers gone from the bus without ending a consumer (${killedLate} consumers killed since the last producers started)`);
                break;
              }
            } else quietSince = undefined;
            await waitFor(delay(20), `${finalsDone} end markers to end ${finalsDone} consumers (${consumerEnds} ended)`);
          }
          // The others keep waiting for a next stream.
          await delay(200);
        } else {
          // Lossy: every consumer catches up with the chunk at FILE.
          let head: ChunkRef | undefined;
          try { head = checkChunk(fs.readFileSync(bus), FORMAT); } catch (error) { defect(`FILE after the last producers: ${(error as Error).message}`); }
          if (head) {
            for (const s of consumerSlots) {
              const r = s.live?.reader;
              while (r && !(r.chunks.at(-1)?.tag === head.tag && r.chunks.at(-1)?.index === head.index)) {
                await waitFor(delay(10), `lossy ${s.live!.label} to emit the newest chunk ${head.tag}#${head.index}`);
              }
            }
          }
        }
      }
    } catch (error) {
      if (!(error instanceof HangError)) throw error;
      res.hung = true;
      defect(`hang: waited ${Math.round(cfg.endPhaseMs / 1000)} s for ${error.message}; ${describeBus()}`);
    }
    stopping = true;
    await Promise.all(actors.map(async (a) => { a.feeder?.close(); await killTraced(a.proc); a.proc.flow(); await Promise.race([a.proc.done, delay(5000)]); }));
    verdict(cfg, bus, dir, tags, consumerSlots.map((s) => s.chain), res, defect);
  } finally {
    stopping = true;
    for (const a of actors) { a.feeder?.close(); if (a.proc.running()) await killTraced(a.proc); }
    fs.rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  }
  res.seconds = Math.round((Date.now() - t0) / 100) / 10;
  return res;
}

// ------------------------------------------------------------------ verdict

function key(ref: ChunkRef): string {
  return `${ref.tag}#${ref.index}`;
}

function verdict(
  cfg: DrillConfig, bus: string, dir: string, tags: Map<string, { completed: boolean; chunks: number }>, chains: Actor[][],
  res: RunResult, defect: (text: string) => void,
): void {
  const { mode } = cfg;
  const K = FORMAT.perChunk;
  // The highest chunk index of each tag anyone saw: on disk or in any output.
  const maxSeen = new Map<string, number>();
  const see = (ref: ChunkRef): void => { maxSeen.set(ref.tag, Math.max(maxSeen.get(ref.tag) ?? -1, ref.index)); };
  for (const chain of chains) for (const a of chain) for (const c of a.reader!.chunks) see(c);
  for (const a of chains.flat()) {
    if (a.reader!.error) { res.torn += 1; defect(`torn record in ${a.label}'s output: ${a.reader!.error.message}`); }
    res.records += a.reader!.chunks.length * K;
  }
  /** Chunks every consumer must have emitted: all of a producer that finished; of a faulted one, everything up to the last it got out. */
  const expected = (): string[] => {
    const out: string[] = [];
    for (const [tag, t] of tags) {
      const n = t.completed ? t.chunks : (maxSeen.get(tag) ?? -1) + 1;
      for (let i = 0; i < n; i++) out.push(`${tag}#${i}`);
    }
    return out;
  };

  if (mode === 'multicast') {
    const segs = segments(bus);
    const bySeq = new Map<number, typeof segs>();
    for (const s of segs) {
      const list = bySeq.get(s.seq) ?? [];
      list.push(s);
      bySeq.set(s.seq, list);
      let data: Buffer;
      try { data = fs.readFileSync(s.path); } catch { continue; }
      if (!segmentIntact(s, data)) { res.torn += 1; defect(`segment ${s.name} does not match its checksum`); continue; }
      if (data.length > 0) {
        try { see(checkChunk(data, FORMAT)); } catch (error) { res.torn += 1; defect(`segment ${s.name} torn: ${(error as Error).message}`); }
      }
    }
    const describe = (s: { path: string }): string => {
      try {
        const data = fs.readFileSync(s.path);
        return data.length === 0 ? 'end marker' : key(checkChunk(data, FORMAT));
      } catch { return '?'; }
    };
    const reused = [...bySeq].filter(([, list]) => list.length > 1);
    res.reusedNumbers += reused.length;
    for (const [seq, list] of reused.slice(0, 3)) {
      defect(`segment ${pad20(seq)} published twice: ${list.map((s) => `${s.name} (${describe(s)})`).join(', ')}`);
    }
    if (reused.length > 3) defect(`${reused.length} segment numbers in all published twice (more than one file under one number)`);
    const markers = segs.filter((s) => { try { return fs.statSync(s.path).size === 0; } catch { return false; } });
    const top = segs.at(-1)?.seq ?? 0;
    if (markers.length === 0) defect('no end marker on disk');
    else if (markers.length > 1) defect(`${markers.length} end markers for one stream: ${markers.map((m) => m.name).join(', ')}`);
    else if (markers[0]!.seq !== top) defect(`end marker ${markers[0]!.name} is not the last segment (segments up to ${pad20(top)})`);
    for (let n = 1; n <= top; n++) if (!bySeq.has(n)) defect(`segment ${pad20(n)} missing from FILE.segments`);
    const want = expected();
    // Each consumer (a named one: all its runs, one after another) against the stream.
    for (const chain of chains) {
      checkConsumerChain(chain, want, res, defect, true);
    }
    const producersLeft = fs.existsSync(`${bus}.producers`) ? fs.readdirSync(`${bus}.producers`) : [];
    if (!res.hung && producersLeft.length > 0) defect(`registrations left after the stream ended: ${producersLeft.join(', ')}`);
  } else if (mode === 'back-pressure') {
    const counts = new Map<string, number>();
    const allowance = new Map<string, number>();
    for (const a of chains.flat()) {
      for (const c of a.reader!.chunks) counts.set(key(c), (counts.get(key(c)) ?? 0) + 1);
      // A consumer killed after writing a chunk out and before letting go of it: that chunk may come again.
      const last = a.reader!.chunks.at(-1);
      if (a.faulted && last && a.reader!.pending.length === 0) allowance.set(key(last), (allowance.get(key(last)) ?? 0) + 1);
    }
    // Chunks still on the bus after the end: lost unless delivered.
    for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
      if (name === 'bus' || name.endsWith('.taken')) {
        let data: Buffer | undefined;
        try { data = fs.readFileSync(path.join(dir, name)); } catch { continue; }
        if (!res.hung) defect(`left on the bus after every end marker was taken: ${name} (${data.length === 0 ? 'an end marker' : `${data.length} B`})`);
        if (data.length > 0) { try { see(checkChunk(data, FORMAT)); } catch { /* counted as lost */ } }
      }
    }
    const want = expected();
    const lostKeys: string[] = [];
    for (const k of want) if (!counts.has(k)) lostKeys.push(k);
    res.lost += lostKeys.length * K;
    if (lostKeys.length > 0) defect(`${lostKeys.length} chunks never delivered by any consumer (first: ${lostKeys.slice(0, 3).join(', ')})`);
    const extra: string[] = [];
    for (const [k, n] of counts) {
      if (n <= 1) continue;
      const ok = Math.min(n - 1, allowance.get(k) ?? 0);
      res.allowedRepeats += ok * K;
      if (n - 1 > ok) { res.repeated += (n - 1 - ok) * K; extra.push(`${k} ×${n}`); }
    }
    if (extra.length > 0) defect(`chunks delivered more than once, not at a consumer kill: ${extra.slice(0, 5).join(', ')}`);
    // Each consumer's share in order, unless a consumer was killed: a chunk it had taken is adopted by another,
    // which delivers it after newer ones (as the protocol says), and which chunks those were leaves no trace.
    const consumerKilled = chains.flat().some((a) => a.faulted);
    for (const a of consumerKilled ? [] : chains.flat()) {
      const last = new Map<string, number>();
      for (const c of a.reader!.chunks) {
        if ((last.get(c.tag) ?? -1) >= c.index) defect(`${a.label}: ${key(c)} after ${c.tag}#${last.get(c.tag)} (its share out of order)`);
        last.set(c.tag, c.index);
      }
    }
  } else {
    for (const a of chains.flat()) {
      const last = new Map<string, number>();
      for (const c of a.reader!.chunks) {
        const prev = last.get(c.tag) ?? -1;
        if (prev === c.index) { res.repeated += K; defect(`${a.label}: ${key(c)} emitted twice`); }
        else if (prev > c.index) defect(`${a.label}: ${key(c)} after ${c.tag}#${prev} (out of producer order)`);
        last.set(c.tag, Math.max(prev, c.index));
      }
    }
  }
}

/**
 * A multicast consumer (the runs of one named consumer, in order) against
 * the chunks it must emit: each once, each producer's in order; the only
 * repeat allowed is a run's first chunk being the last one the killed run
 * before it got out, and bytes a killed run got out of a chunk must be a
 * prefix of the next run's first chunk.
 */
function checkConsumerChain(chain: Actor[], want: readonly string[], res: RunResult, defect: (t: string) => void, exact: boolean): void {
  const K = FORMAT.perChunk;
  const label = chain[0]!.label;
  const seen = new Map<string, number>();
  const lastOf = new Map<string, number>();
  let prevLast: ChunkRef | undefined;
  let prevPending: Buffer | undefined;
  for (const [i, a] of chain.entries()) {
    const r = a.reader!;
    for (const [k, c] of r.chunks.entries()) {
      if (k === 0 && i > 0 && prevPending && prevPending.length > 0) {
        if (!chunk(FORMAT, c.tag, c.index).subarray(0, prevPending.length).equals(prevPending)) {
          res.torn += 1;
          defect(`${label}: run ${i - 1}'s last ${prevPending.length} bytes are not a prefix of ${key(c)}, the next run's first chunk`);
        }
      }
      if (seen.has(key(c))) {
        if (k === 0 && prevLast && key(prevLast) === key(c) && !(prevPending && prevPending.length > 0)) { res.allowedRepeats += K; continue; }
        res.repeated += K;
        defect(`${label}: ${key(c)} emitted twice`);
        continue;
      }
      seen.set(key(c), 1);
      const prev = lastOf.get(c.tag) ?? -1;
      if (c.index < prev) defect(`${label}: ${key(c)} after ${c.tag}#${prev} (out of producer order)`);
      lastOf.set(c.tag, Math.max(prev, c.index));
    }
    prevLast = r.chunks.at(-1) ?? prevLast;
    prevPending = r.pending.length > 0 ? r.pending : (r.chunks.length > 0 ? undefined : prevPending);
  }
  if (!exact) return;
  const missing = want.filter((k) => !seen.has(k));
  res.lost += missing.length * K;
  if (missing.length > 0) defect(`${label}: ${missing.length} chunks (${missing.length * K} records) lost, first ${missing.slice(0, 3).join(', ')}`);
  if (chain.at(-1)!.exit && !chain.at(-1)!.finished && !res.hung) defect(`${label} did not exit 0: ${JSON.stringify(chain.at(-1)!.exit)}`);
}
