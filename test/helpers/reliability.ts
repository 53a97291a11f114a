/**
 * Helpers for the reliability and security fault suite (test/reliability/),
 * beside the shared ones (processes: procs.ts; records and chunks:
 * records.ts; the bus on disk: bus-layout.ts):
 *
 * - the delivery rule a chain of killed consumers must keep (checkChain);
 * - SIGKILL of one process at a chosen instant (sigkill);
 * - a FIFO the test feeds whole blocks into (writes of at most PIPE_BUF bytes
 *   are atomic, so a producer reading it always holds whole blocks);
 * - VmRSS sampling, tmpfs mounts, one-line error checks, and the shared
 *   results file the suite reports its figures in.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { flockSync } from 'fs-ext';
import { ROOT } from './cli.js';
import type { Exit, Proc } from './procs.js';
import { chunk, chunkBytes, type ChunkRef, type Format } from './records.js';

/** How many fault runs per mode; RELIABILITY_RUNS overrides it (for a quick local look). */
export const RUNS = Number(process.env.RELIABILITY_RUNS ?? 200);

/**
 * The at-least-once-at-one-boundary rule of a chain of consumers run one
 * after another on the same stream (back-pressure consumers, or restarts of
 * one named multicast consumer), each killed but the last:
 *
 * - together they emit chunks 0..total-1 of `tag`, in order, none missing;
 * - the only repeat allowed is, at the start of a run, the chunk the previous
 *   run with output emitted last (it was killed after writing it, before
 *   acknowledging it), and only if that run did not go on to a next chunk;
 * - the bytes a killed run got out of the chunk it was writing when killed
 *   (its pending bytes) must be a prefix of the chunk the next run emits first.
 *
 * Returns the counts; throws describing the first violation.
 */
export function checkChain(
  format: Format,
  runs: ReadonlyArray<{ chunks: readonly ChunkRef[]; pending: Buffer }>,
  tag: string,
  total: number,
): { chunks: number; repeatsWhole: number; repeatsPrefix: number; prefixBytes: number } {
  let next = 0; // the first chunk not yet emitted by anyone
  let prefix: Buffer | undefined; // bytes of chunk `next` that a killed run got out
  let repeatable = false; // chunk next-1 may be emitted again (its run ended right after it)
  let repeatsWhole = 0;
  let repeatsPrefix = 0;
  let prefixBytes = 0;
  let count = 0;
  runs.forEach((run, i) => {
    const where = (k: number): string => `run ${i}, chunk ${k} of its output`;
    run.chunks.forEach((ref, k) => {
      count += 1;
      if (ref.tag !== tag) throw new Error(`${where(k)}: chunk of stream ${ref.tag}, expected ${tag}`);
      if (k === 0 && repeatable && prefix === undefined && ref.index === next - 1) {
        repeatsWhole += 1;
        return;
      }
      if (ref.index !== next) {
        throw new Error(`${where(k)}: chunk ${ref.index}, expected ${next}${ref.index < next ? ' (a repeat not allowed here)' : ' (chunks lost)'}`);
      }
      if (prefix !== undefined) {
        if (k !== 0) throw new Error(`${where(k)}: a prefix of chunk ${next} was left unfinished`);
        if (!chunk(format, tag, next).subarray(0, prefix.length).equals(prefix)) {
          throw new Error(`run ${i - 1}'s last bytes are not a prefix of chunk ${next}`);
        }
        repeatsPrefix += 1;
        prefixBytes += prefix.length;
        prefix = undefined;
      }
      next += 1;
    });
    if (run.pending.length > 0) {
      if (prefix !== undefined) throw new Error(`run ${i}: emitted part of chunk ${next} while a prefix of it was already out`);
      if (run.pending.length >= chunkBytes(format)) throw new Error(`run ${i}: pending bytes longer than a chunk`);
      prefix = Buffer.from(run.pending);
      repeatable = false;
    } else if (run.chunks.length > 0) {
      repeatable = true;
    }
  });
  if (prefix !== undefined) throw new Error(`the last run left a prefix of chunk ${next} unfinished`);
  if (next !== total) throw new Error(`the chain emitted chunks 0..${next - 1}, expected 0..${total - 1} (${total - next} lost)`);
  return { chunks: count, repeatsWhole, repeatsPrefix, prefixBytes };
}

/**
 * SIGKILLs the process itself (not its group: under strace, the tracer) and
 * waits until it has exited (a flock it held is released by then).
 */
export async function sigkill(proc: Proc): Promise<Exit> {
  try { proc.child.kill('SIGKILL'); } catch { /* already gone */ }
  return proc.exited;
}

// -------------------------------------------------------------------- FIFOs

/**
 * A named pipe the test writes whole blocks into, given to a producer as its
 * stdin. Blocks of at most PIPE_BUF (4096) bytes written to a pipe are
 * atomic, and the producer reads 64 KiB at a time, so it only ever holds
 * whole blocks: its chunks are exactly the blocks.
 */
export class BlockFeeder {
  readonly path: string;
  /** Blocks written so far. */
  fed = 0;
  readonly #block: (i: number) => Buffer;
  #readFd: number | undefined;
  #writeFd: number | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(dir: string, name: string, block: (i: number) => Buffer) {
    this.path = path.join(dir, name);
    this.#block = block;
    execFileSync('mkfifo', ['-m', '0600', this.path]);
    // Non-blocking opens: the read end first (so the write end has a reader).
    this.#readFd = fs.openSync(this.path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    this.#writeFd = fs.openSync(this.path, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  }

  /** The read end, to pass as a child's stdin; call releaseReadEnd() once the child has it. */
  get readFd(): number {
    if (this.#readFd === undefined) throw new Error('read end already released');
    return this.#readFd;
  }

  releaseReadEnd(): void {
    if (this.#readFd !== undefined) fs.closeSync(this.#readFd);
    this.#readFd = undefined;
  }

  /** Writes blocks until `limit` have been written or the pipe is full. Returns false if the reader is gone. */
  pump(limit: number): boolean {
    if (this.#writeFd === undefined) return false;
    while (this.fed < limit) {
      const block = this.#block(this.fed);
      if (block.length > 4096) throw new Error('blocks over PIPE_BUF are not atomic');
      try {
        const n = fs.writeSync(this.#writeFd, block);
        if (n !== block.length) throw new Error(`short write of ${n} bytes to a pipe`);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') return true;
        if (code === 'EPIPE') return false;
        throw error;
      }
      this.fed += 1;
    }
    return true;
  }

  /** Keeps pumping every `everyMs` up to `limit()` blocks. */
  start(limit: () => number, everyMs = 1): void {
    this.stop();
    this.#timer = setInterval(() => this.pump(limit()), everyMs);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Stops and closes the write end: the producer sees end of input. */
  close(): void {
    this.stop();
    this.releaseReadEnd();
    if (this.#writeFd !== undefined) fs.closeSync(this.#writeFd);
    this.#writeFd = undefined;
  }
}

// ------------------------------------------------------------------ symlinks

/** What identifies a file's content and last change: the test proves a symlink target kept all of it. */
export function fingerprint(file: string): { ino: number; size: number; mtimeNs: bigint; ctimeNs: bigint; mode: number; content: string } {
  const st = fs.statSync(file, { bigint: true });
  return {
    ino: Number(st.ino),
    size: Number(st.size),
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    mode: Number(st.mode),
    content: st.isDirectory() ? fs.readdirSync(file).sort().join('\n') : fs.readFileSync(file).toString('base64'),
  };
}

// ---------------------------------------------------------- error messages

/**
 * The one-line error contract: stderr is exactly `filebus: <message>\n`,
 * with no stack trace. Returns the message.
 */
export function oneLineError(stderr: string): string {
  if (/^\s+at /m.test(stderr)) throw new Error(`stack trace on stderr:\n${stderr}`);
  const m = /^filebus: ([^\n]+)\n$/.exec(stderr);
  if (!m) throw new Error(`stderr is not one 'filebus: ...' line: ${JSON.stringify(stderr.slice(0, 2000))}`);
  return m[1]!;
}

// ---------------------------------------------------------------- memory

/** VmRSS of a process in bytes, or undefined if it is gone. */
export function vmRss(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------------ mounts

/** Mounts a tmpfs of `bytes` at `dir` (created if needed); returns the unmount. Needs root. */
export function mountTmpfs(dir: string, bytes: number): () => void {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'tmpfs', dir]);
  let mounted = true;
  return () => {
    if (!mounted) return;
    mounted = false;
    const result = spawnSync('umount', [dir]);
    if (result.status !== 0) spawnSync('umount', ['-l', dir]);
  };
}

/** Fills the file system holding `dir` with a file until ENOSPC; returns its path and size. */
export function fillDisk(dir: string, name = 'filler'): { path: string; bytes: number } {
  const file = path.join(dir, name);
  const fd = fs.openSync(file, 'a');
  const block = Buffer.alloc(64 * 1024, 0x46);
  let bytes = fs.fstatSync(fd).size;
  try {
    for (let size = block.length; size >= 1;) {
      try {
        bytes += fs.writeSync(fd, block, 0, size);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
        size = Math.floor(size / 2);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return { path: file, bytes };
}

// ---------------------------------------------------------------- results

export const RESULTS_FILE = path.join(ROOT, 'test/reliability/results.json');

/**
 * Records the figures of one part of the suite in test/reliability/results.json
 * (merged under a lock: test files run in parallel).
 */
export function writeResults(section: string, figures: Record<string, unknown>): void {
  const lockFd = fs.openSync(`${RESULTS_FILE}.lock`, 'a');
  try {
    flockSync(lockFd, 'ex');
    let all: Record<string, unknown> = {};
    try {
      all = JSON.parse(fs.readFileSync(RESULTS_FILE, 'utf8')) as Record<string, unknown>;
    } catch { /* first writer */ }
    all[section] = { ...figures, recordedAt: new Date().toISOString() };
    const tmp = `${RESULTS_FILE}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify(sortKeys(all), null, 2)}\n`);
    fs.renameSync(tmp, RESULTS_FILE);
  } finally {
    fs.closeSync(lockFd);
  }
}

function sortKeys(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}

// ------------------------------------------------------------------ figures

/** The middle value (the upper one of an even count), NaN for none: the drills' typical figure. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

// ----------------------------------------------------------------- random

/** A small seeded PRNG (mulberry32), so a failing run can be replayed with RELIABILITY_SEED. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function seedFor(name: string): number {
  if (process.env.RELIABILITY_SEED) return Number(process.env.RELIABILITY_SEED);
  return (Date.now() ^ crc32(name)) >>> 0;
}
