/**
 * Runs filebus implementations side by side on one bus: ours (bin/filebus
 * under this Node) and the reference (any executable that behaves like the
 * Python `filebus`, named by FILEBUS_REFERENCE). Every process started here
 * is tracked so a test can kill what is still running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { BIN } from '../helpers/cli.js';

export interface Impl {
  readonly name: 'ours' | 'reference';
  readonly command: string;
  readonly prefix: readonly string[];
}

export const OURS: Impl = { name: 'ours', command: process.execPath, prefix: [BIN] };

export function referenceImpl(launcher: string): Impl {
  return { name: 'reference', command: launcher, prefix: [] };
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface BusProcess {
  readonly impl: Impl;
  readonly child: ChildProcess;
  /** stdout collected so far. */
  stdout(): Buffer;
  stdoutBytes(): number;
  stderr(): string;
  running(): boolean;
  /** Settles once the process has exited and its stdio is closed. */
  readonly done: Promise<Exit>;
  /** Writes to stdin (a pipe), resolving once the data is handed to the kernel. */
  write(data: Buffer): Promise<void>;
  endInput(): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit. */
  stop(graceMs?: number): Promise<Exit>;
}

const live = new Set<BusProcess>();

/**
 * Starts `impl [options...] command`. Options come before the command: the
 * reference's argparse only accepts its global options there.
 */
export function startBus(
  impl: Impl,
  command: 'producer' | 'consumer',
  options: readonly string[],
  io: { stdinFile?: string } = {},
): BusProcess {
  const stdinFd = io.stdinFile !== undefined ? fs.openSync(io.stdinFile, 'r') : undefined;
  const child = spawn(impl.command, [...impl.prefix, ...options, command], {
    stdio: [stdinFd ?? (command === 'producer' ? 'pipe' : 'ignore'), 'pipe', 'pipe'],
  });
  if (stdinFd !== undefined) fs.closeSync(stdinFd);
  const out: Buffer[] = [];
  let outBytes = 0;
  let err = '';
  let exited = false;
  child.stdout!.on('data', (d: Buffer) => { out.push(d); outBytes += d.length; });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  child.stdin?.on('error', () => { /* the producer died; its exit says why */ });
  const done = new Promise<Exit>((resolve) => {
    child.on('exit', () => { exited = true; });
    child.on('close', (code, signal) => {
      exited = true;
      live.delete(proc);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err });
    });
    child.on('error', (error) => {
      exited = true;
      live.delete(proc);
      resolve({ code: null, signal: null, stdout: Buffer.concat(out), stderr: `${err}spawn failed: ${error.message}` });
    });
  });
  const proc: BusProcess = {
    impl,
    child,
    stdout: () => Buffer.concat(out),
    stdoutBytes: () => outBytes,
    stderr: () => err,
    running: () => !exited,
    done,
    write: (data) => new Promise((resolve, reject) => {
      child.stdin!.write(data, (error) => (error ? reject(error) : resolve()));
    }),
    endInput: () => { child.stdin?.end(); },
    async stop(graceMs = 3000) {
      if (!exited) child.kill('SIGTERM');
      const timer = setTimeout(() => { if (!exited) child.kill('SIGKILL'); }, graceMs);
      try {
        return await done;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  live.add(proc);
  return proc;
}

/** Kills every process still running (for afterEach). */
export async function killAll(): Promise<void> {
  const procs = [...live];
  for (const p of procs) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.done));
}

/** A short description of a finished process, for assertion messages. */
export function describeExit(p: BusProcess, exit: Exit): string {
  return `${p.impl.name} ${p.child.spawnargs.slice(-1)[0]} exited code=${exit.code} signal=${exit.signal}; stderr: ${exit.stderr.trim().slice(-2000) || '(empty)'}`;
}

/** Resolves with `p`'s exit, or rejects after `ms` (the process is left running for killAll). */
export async function exitWithin(p: BusProcess, ms: number, what: string): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(
      `${what}: ${p.impl.name} ${p.child.spawnargs.slice(-1)[0]} still running after ${ms} ms; ` +
      `stdout ${p.stdoutBytes()} bytes; stderr: ${p.stderr().trim().slice(-2000) || '(empty)'}`,
    )), ms);
  });
  try {
    return await Promise.race([p.done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * True when `input` is exactly `a` and `b` cut into runs and interleaved in
 * order, every byte used once: what two back-pressure consumers sharing a
 * stream must have received between them. A chunk boundary is not visible in
 * a consumer's output, so this searches the cut points; with random data the
 * search is close to linear.
 */
export function isInterleaving(input: Buffer, a: Buffer, b: Buffer): boolean {
  if (a.length + b.length !== input.length) return false;
  const n = input.length;
  const lcp = (x: Buffer, xi: number, y: Buffer, yi: number): number => {
    const max = Math.min(x.length - xi, y.length - yi);
    let k = 0;
    while (k < max && x[xi + k] === y[yi + k]) k++;
    return k;
  };
  // State: input position p, bytes of a used ai (b used = p - ai), and which
  // source the last run came from (runs alternate, so the next is the other).
  type State = { p: number; ai: number; last: 'a' | 'b' | undefined };
  const stack: State[] = [{ p: 0, ai: 0, last: undefined }];
  const seen = new Set<string>();
  let steps = 0;
  while (stack.length > 0) {
    if (++steps > 2_000_000) throw new Error('isInterleaving: search too long');
    const { p, ai, last } = stack.pop()!;
    const bi = p - ai;
    if (p === n) return true;
    const key = `${p}:${ai}:${last ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    for (const from of ['a', 'b'] as const) {
      if (from === last) continue;
      const [src, si, other, oi] = from === 'a' ? [a, ai, b, bi] : [b, bi, a, ai];
      const run = lcp(input, p, src, si);
      if (run === 0) continue;
      // A run may end at k when the input ends there or the other source can go on there.
      const ends: number[] = [];
      if (p + run === n) ends.push(run);
      if (oi < other.length) {
        const next = other[oi]!;
        for (let at = input.indexOf(next, p + 1); at !== -1 && at <= p + run; at = input.indexOf(next, at + 1)) ends.push(at - p);
      }
      ends.sort((x, y) => x - y); // longest last: popped first
      for (const k of ends) stack.push({ p: p + k, ai: from === 'a' ? ai + k : ai, last: from });
    }
  }
  return false;
}
