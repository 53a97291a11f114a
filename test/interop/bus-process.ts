/**
 * Runs filebus implementations side by side on one bus: ours (bin/filebus
 * under this Node) and the reference (any executable that behaves like the
 * Python `filebus`, named by FILEBUS_REFERENCE). Processes come from the
 * shared harness (procs.ts), so its killAll() ends what is still running.
 */
import { BIN } from '../helpers/cli.js';
import { startProcess, type Ended, type Proc } from '../helpers/procs.js';

export interface Impl {
  readonly name: 'ours' | 'reference';
  readonly command: string;
  readonly prefix: readonly string[];
}

export const OURS: Impl = { name: 'ours', command: process.execPath, prefix: [BIN] };

export function referenceImpl(launcher: string): Impl {
  return { name: 'reference', command: launcher, prefix: [] };
}

/** A process of the shared harness (procs.ts), knowing which implementation it runs. */
export interface BusProcess extends Proc {
  readonly impl: Impl;
  /** Writes to stdin (a pipe), resolving once the data is handed to the kernel. */
  write(data: Buffer): Promise<void>;
  endInput(): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit. */
  stop(graceMs?: number): Promise<Ended>;
}

/**
 * Starts `impl [options...] command`. Options come before the command: the
 * reference's argparse only accepts its global options there. A producer
 * reads a pipe (or `io.stdinFile`); a consumer, /dev/null.
 */
export function startBus(
  impl: Impl,
  command: 'producer' | 'consumer',
  options: readonly string[],
  io: { stdinFile?: string } = {},
): BusProcess {
  const proc = startProcess(impl.command, [...impl.prefix, ...options, command], {
    stdin: io.stdinFile !== undefined ? { file: io.stdinFile } : command === 'producer' ? 'pipe' : 'ignore',
  });
  return Object.assign(proc, {
    impl,
    write: (data: Buffer) => new Promise<void>((resolve, reject) => {
      proc.stdin!.write(data, (error) => (error ? reject(error) : resolve()));
    }),
    endInput: () => { proc.stdin?.end(); },
    async stop(graceMs = 3000) {
      if (proc.running()) proc.child.kill('SIGTERM');
      const timer = setTimeout(() => { if (proc.running()) proc.child.kill('SIGKILL'); }, graceMs);
      try {
        return await proc.ended;
      } finally {
        clearTimeout(timer);
      }
    },
  });
}

/** A short description of a finished process, for assertion messages. */
export function describeExit(p: BusProcess, exit: Ended): string {
  return `${p.impl.name} ${p.child.spawnargs.slice(-1)[0]} exited code=${exit.code} signal=${exit.signal}; stderr: ${exit.stderr.trim().slice(-2000) || '(empty)'}`;
}

/** Resolves with `p`'s exit, or rejects after `ms` (the process is left running for killAll). */
export async function exitWithin(p: BusProcess, ms: number, what: string): Promise<Ended> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(
      `${what}: ${p.impl.name} ${p.child.spawnargs.slice(-1)[0]} still running after ${ms} ms; ` +
      `stdout ${p.stdoutBytes()} bytes; stderr: ${p.stderr().trim().slice(-2000) || '(empty)'}`,
    )), ms);
  });
  try {
    return await Promise.race([p.ended, timeout]);
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
