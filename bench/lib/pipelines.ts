/**
 * The pipelines the cases time, all built the same way: something feeds
 * an input side (a file as stdin, or the harness writing a pipe), and every
 * output lands in a Sink in this process.
 *
 * - filebus: N consumers started first and waited for, then the producer.
 * - shell baselines through bash: `cat | cat` and `tee >(cat) ... >(cat)`,
 *   each reader writing to its own descriptor (3, 4, ...) of bash, which
 *   this process reads exactly like a consumer's stdout.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { freshBusDir, implEnv, profiled, type Ctx } from './context.js';
import { busCommand, chunksFromStderr, type Impl, type Mode } from './impl.js';
import type { InputFile } from './input.js';
import { hasInotify, now, Proc, waitUntil, withTimeout } from './procs.js';
import { Sink, type RecordParser } from './sinks.js';

/**
 * The input side's stdin: a file, a pipe the harness writes, or `feed`, a
 * shell command whose stdout is piped into it (bash runs both, so the
 * input side's process is then that bash).
 */
export type Stdin = { readonly file: string } | 'pipe' | { readonly feed: string };

export interface Session {
  readonly label: string;
  /** When the input side was started (the producer, or the shell pipeline). */
  readonly start: bigint;
  /** Where the harness writes when stdin is 'pipe'. */
  readonly input: Writable | undefined;
  readonly sinks: readonly Sink[];
  readonly procs: readonly Proc[];
  readonly producer: Proc | undefined;
  readonly consumers: readonly Proc[];
  /** Lossy filebus consumers never end by themselves: this ends them (SIGTERM, as a user would). */
  stopConsumers(): void;
  /** The bus directory to remove afterwards, if any. */
  readonly dir: string | undefined;
}

/** The input side's stdin, opened before the clock starts (a file is closed again by closeStdin once the child has it). */
function openStdin(stdin: Stdin): { readonly fd: number } | 'pipe' | 'ignore' {
  if (stdin === 'pipe') return 'pipe';
  if ('feed' in stdin) return 'ignore';
  return { fd: fs.openSync(stdin.file, 'r') };
}

function closeStdin(fd: { readonly fd: number } | 'pipe' | 'ignore'): void {
  if (typeof fd === 'object') fs.closeSync(fd.fd);
}

/** Quotes a word for bash. */
export function shq(word: string): string {
  return /^[A-Za-z0-9_./=:,+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** argv, or `feed | argv` through bash when stdin is a feed (pipefail: either failing fails it). */
function withFeed(argv: readonly string[], stdin: Stdin): string[] {
  if (stdin === 'pipe' || !('feed' in stdin)) return [...argv];
  return ['bash', '-c', `set -o pipefail; ${stdin.feed} | exec ${argv.map(shq).join(' ')}`];
}

export interface FilebusSessionOptions {
  readonly impl: Impl;
  /** The producer's command when it differs from the consumers' (profiling wrappers). */
  readonly producerImpl?: Impl;
  readonly mode: Mode;
  readonly consumers: number;
  readonly blockSize?: number;
  readonly busBase: string;
  readonly stdin: Stdin;
  readonly parser?: () => RecordParser;
  /** File the memory preload reports into (Node processes only). */
  readonly hwmFile?: string;
  readonly label: string;
}

/** Starts N consumers, waits until they are listening, then starts the producer. */
export async function openFilebus(ctx: Ctx, o: FilebusSessionOptions): Promise<Session> {
  const dir = freshBusDir(o.busBase, o.label);
  const file = path.join(dir, 'bus');
  const env = implEnv(ctx, o.impl, o.hwmFile);
  const common = { file, mode: o.mode, ...(o.blockSize !== undefined && { blockSize: o.blockSize }) };
  const consumers: Proc[] = [];
  const sinks: Sink[] = [];
  for (let i = 0; i < o.consumers; i++) {
    const proc = new Proc(`${o.label}: consumer ${i + 1}`, busCommand(profiled(ctx, o.impl), { ...common, role: 'consumer' }), {
      stdin: 'ignore',
      stdout: 'pipe',
      env,
    });
    consumers.push(proc);
    sinks.push(new Sink(proc.name, proc.output(1), o.parser?.()));
  }
  try {
    await waitConsumersReady(o.impl, o.mode, file, consumers);
  } catch (error) {
    for (const c of consumers) c.killGroup();
    throw error;
  }
  const fd = openStdin(o.stdin);
  const start = now();
  const producer = new Proc(`${o.label}: producer`, withFeed(busCommand(profiled(ctx, o.producerImpl ?? o.impl), { ...common, role: 'producer', verbose: true }), o.stdin), {
    stdin: fd,
    stdout: 'ignore',
    env,
  });
  closeStdin(fd);
  return {
    label: o.label,
    start,
    input: fd === 'pipe' ? producer.stdin() : undefined,
    sinks,
    procs: [...consumers, producer],
    producer,
    consumers,
    stopConsumers: () => consumers.forEach((c) => c.stop()),
    dir,
  };
}

/**
 * Consumers are ready when they can no longer miss the first chunk's
 * wake-up: a multicast consumer once its cursor file exists, a filebus
 * consumer once it has an inotify watch. The reference (which polls
 * without the watchdog module) gets a fixed second.
 */
async function waitConsumersReady(impl: Impl, mode: Mode, file: string, consumers: readonly Proc[]): Promise<void> {
  const exited = (): Proc | undefined => consumers.find((c) => !c.running);
  let ready: () => boolean;
  if (mode === 'multicast') {
    const dir = `${file}.consumers`;
    ready = () => {
      try {
        return fs.readdirSync(dir).filter((n) => n.endsWith('.cursor')).length >= consumers.length;
      } catch {
        return false;
      }
    };
  } else if (impl.node) {
    ready = () => consumers.every((c) => hasInotify(c.pid));
  } else {
    await delay(1000);
    ready = () => true;
  }
  const ok = await waitUntil(() => ready() || exited() !== undefined, 20_000 + 500 * consumers.length, 10);
  const dead = exited();
  if (dead) {
    await dead.done;
    throw new Error(`consumer exited before it was ready: ${dead.failure() ?? `status ${dead.code}`}`);
  }
  if (!ok) throw new Error(`consumers not ready after ${20 + consumers.length / 2} s`);
  // Lossy and back-pressure consumers set their watch up just before they first look.
  await delay(mode === 'multicast' ? 0 : 50);
}

export interface ShellSessionOptions {
  readonly label: string;
  /** A bash script whose readers write to descriptors 3 .. 3+outputs-1. */
  readonly script: string;
  readonly outputs: number;
  readonly stdin: Stdin;
  readonly parser?: () => RecordParser;
}

export function openShell(o: ShellSessionOptions): Session {
  const fd = openStdin(o.stdin);
  const start = now();
  const fds = Array.from({ length: o.outputs }, (_, i) => 3 + i);
  const script = o.stdin !== 'pipe' && 'feed' in o.stdin ? `set -o pipefail; ${o.stdin.feed} | { ${o.script}; }` : o.script;
  const proc = new Proc(o.label, ['bash', '-c', script], { stdin: fd, stdout: 'ignore', extraPipes: fds.length });
  closeStdin(fd);
  const sinks = fds.map((f, i) => new Sink(`${o.label}: output ${i + 1}`, proc.output(f), o.parser?.()));
  return {
    label: o.label,
    start,
    input: fd === 'pipe' ? proc.stdin() : undefined,
    sinks,
    procs: [proc],
    producer: undefined,
    consumers: [],
    stopConsumers: () => {},
    dir: undefined,
  };
}

export interface CommandSessionOptions {
  readonly label: string;
  readonly argv: readonly string[];
  readonly stdin: Stdin;
  readonly env?: NodeJS.ProcessEnv;
}

/** Any one command whose stdout is the single output. */
export function openCommand(o: CommandSessionOptions): Session {
  const fd = openStdin(o.stdin);
  const start = now();
  const proc = new Proc(o.label, withFeed(o.argv, o.stdin), { stdin: fd, stdout: 'pipe', ...(o.env && { env: o.env }) });
  closeStdin(fd);
  return {
    label: o.label,
    start,
    input: fd === 'pipe' ? proc.stdin() : undefined,
    sinks: [new Sink(`${o.label}: output`, proc.output(1))],
    procs: [proc],
    producer: undefined,
    consumers: [],
    stopConsumers: () => {},
    dir: undefined,
  };
}

/** `cat | cat`, the second writing to descriptor 3: the baseline of a one-consumer stream. */
export function catCatScript(): string {
  return 'cat | exec cat >&3';
}

/** One cat: the baseline of one filebus hop for latency. */
export function catScript(): string {
  return 'exec cat >&3';
}

/** `tee >(cat) ... >(cat) >/dev/null`, reader i writing to descriptor 3+i and holding no other. */
export function teeScript(readers: number): string {
  const fds = Array.from({ length: readers }, (_, i) => 3 + i);
  const closeAll = (except?: number): string => fds.filter((f) => f !== except).map((f) => `${f}>&-`).join(' ');
  const subs = fds.map((f) => `>(exec cat >&${f} ${closeAll(f)})`).join(' ');
  return `exec tee ${subs} >/dev/null ${closeAll()}`;
}

/**
 * Waits until every process has exited and every output has closed.
 * Returns the end time and each output's close time; on timeout every
 * process of the session is killed and the error says which hung.
 */
export async function finish(session: Session, timeoutMs: number): Promise<{ end: bigint; closedAt: bigint[] }> {
  const closedAt = session.sinks.map(() => 0n);
  try {
    await withTimeout(
      Promise.all([
        ...session.procs.map((p) => p.done),
        ...session.sinks.map((s, i) => s.done.then(() => { closedAt[i] = now(); })),
      ]),
      timeoutMs,
      session.label,
    );
  } catch (error) {
    const hung = session.procs.filter((p) => p.running).map((p) => p.name);
    for (const p of session.procs) p.killGroup();
    await Promise.all(session.procs.map((p) => p.done));
    throw new Error(`${(error as Error).message} (still running: ${hung.join(', ') || 'none; an output stayed open'})`);
  }
  return { end: now(), closedAt };
}

/** Records every process failure of a session; true when there was none. */
export function checkProcs(ctx: Ctx, session: Session): boolean {
  let ok = true;
  for (const p of session.procs) {
    const issue = p.knownIssue();
    if (issue) ctx.report.warn(issue);
    const failure = p.failure();
    if (failure) {
      ctx.report.fail(failure);
      ok = false;
    }
  }
  return ok;
}

/** Records every output that is not exactly the input; true when all match. */
export function checkOutputs(ctx: Ctx, session: Session, input: { bytes: number; crc: number }): boolean {
  let ok = true;
  for (const sink of session.sinks) {
    if (!sink.matches(input)) {
      ctx.report.fail(`bytes mismatch: ${sink.describeMismatch(input)}`);
      ok = false;
    }
  }
  return ok;
}

export function removeSession(session: Session): void {
  if (session.dir) fs.rmSync(session.dir, { recursive: true, force: true });
}

/**
 * A generous time limit for moving `bytes` to each of `outputs` readers:
 * past it the run counts as hung. It allows 2 MB/s in all (0.5 MB/s for the
 * reference, which polls), far below anything measured, so a slow machine
 * does not fail the suite; only a stream that stops does.
 */
export function streamTimeoutMs(bytes: number, outputs: number, impl?: Impl): number {
  const floorMBps = impl && !impl.node ? 0.5 : 2;
  return 60_000 + ((bytes * outputs) / (floorMBps * 1e6)) * 1000;
}

export interface StreamResult {
  readonly ok: boolean;
  /** Input side started → every process exited and every output closed. */
  readonly wallS: number;
  /** Per output: first and last byte, and close, in seconds after the start. */
  readonly outputs: { readonly firstS: number; readonly lastS: number; readonly closeS: number; readonly bytes: number }[];
  /** Chunks the filebus producer published (from its -v line). */
  readonly chunks: number | undefined;
}

/** Streams a file through an opened session and checks every output against it. */
export async function completeStream(ctx: Ctx, session: Session, input: InputFile, impl?: Impl): Promise<StreamResult> {
  try {
    const { end, closedAt } = await finish(session, streamTimeoutMs(input.bytes, session.sinks.length, impl));
    const ok = checkProcs(ctx, session) && checkOutputs(ctx, session, input);
    const rel = (t: bigint | undefined): number => (t === undefined ? NaN : Number(t - session.start) / 1e9);
    return {
      ok,
      wallS: rel(end),
      outputs: session.sinks.map((s, i) => ({ firstS: rel(s.firstAt), lastS: rel(s.lastAt), closeS: rel(closedAt[i]), bytes: s.bytes })),
      chunks: session.producer ? chunksFromStderr(session.producer.stderr) : undefined,
    };
  } finally {
    removeSession(session);
  }
}
