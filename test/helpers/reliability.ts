/**
 * Helpers for the reliability and security fault suite (test/reliability/):
 *
 * - self-checking records and chunks: a chunk is K fixed-size records of one
 *   tag with consecutive sequence numbers, each record carrying its own
 *   CRC-32, so a consumer's output alone shows which chunks it emitted,
 *   whether any was torn, spliced or repeated, and which bytes of a chunk a
 *   killed consumer got out;
 * - processes: `node bin/filebus ...` whose stdout is parsed as it arrives,
 *   paused or flowing at the test's choice, SIGKILLed at a chosen instant;
 * - a FIFO the test feeds whole blocks into (writes of at most PIPE_BUF bytes
 *   are atomic, so a producer reading it always holds whole blocks);
 * - VmRSS sampling, tmpfs mounts, one-line error checks, and the shared
 *   results file the suite reports its figures in.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { flockSync } from 'fs-ext';
import { BIN, ROOT } from './cli.js';

export { BIN, ROOT };

/** How many fault runs per mode; RELIABILITY_RUNS overrides it (for a quick local look). */
export const RUNS = Number(process.env.RELIABILITY_RUNS ?? 200);

// ------------------------------------------------------------------ records

/**
 * A record of `size` bytes (a multiple of 8, at least 40):
 * `TTTTTT:SSSSSSSSSS:<filler>:CCCCCCCC\n`, tag T (6 characters), sequence
 * number S (10 digits), and C the CRC-32 of everything before the last colon.
 */
export function record(tag: string, seq: number, size: number): Buffer {
  if (tag.length !== 6) throw new Error(`tag must be 6 characters: ${tag}`);
  const out = Buffer.allocUnsafe(size);
  out.write(`${tag}:${String(seq).padStart(10, '0')}:`, 0, 'latin1');
  // The filler only has to differ between neighbours: the checksum catches a torn or spliced record.
  out.fill(97 + ((seq + tag.charCodeAt(5)) % 26), 18, size - 10);
  out.write(`:${(crc32(out.subarray(0, size - 10)) >>> 0).toString(16).padStart(8, '0')}\n`, size - 10, 'latin1');
  return out;
}

export interface Format {
  /** Bytes per record. */
  readonly recordSize: number;
  /** Records per chunk. */
  readonly perChunk: number;
}

export function chunkBytes(format: Format): number {
  return format.recordSize * format.perChunk;
}

/** Chunk `index` of stream `tag`: records index*K .. index*K+K-1. */
export function chunk(format: Format, tag: string, index: number): Buffer {
  const out = Buffer.allocUnsafe(chunkBytes(format));
  for (let i = 0; i < format.perChunk; i++) record(tag, index * format.perChunk + i, format.recordSize).copy(out, i * format.recordSize);
  return out;
}

/** Chunks first .. first+count-1 of `tag`, back to back. */
export function chunks(format: Format, tag: string, count: number, first = 0): Buffer {
  const size = chunkBytes(format);
  const out = Buffer.allocUnsafe(size * count);
  for (let c = 0; c < count; c++) chunk(format, tag, first + c).copy(out, c * size);
  return out;
}

/** Parses one record; throws naming what is wrong. */
export function parseRecord(buf: Buffer, size: number): { tag: string; seq: number } {
  if (buf.length !== size) throw new Error(`record of ${buf.length} bytes, expected ${size}`);
  if (buf[6] !== 0x3a || buf[17] !== 0x3a || buf[size - 10] !== 0x3a || buf[size - 1] !== 0x0a) {
    throw new Error(`malformed record ${JSON.stringify(buf.toString('latin1', 0, Math.min(40, size)))}`);
  }
  const crc = parseInt(buf.toString('latin1', size - 9, size - 1), 16);
  if ((crc32(buf.subarray(0, size - 10)) >>> 0) !== crc) {
    throw new Error(`record fails its checksum: ${JSON.stringify(buf.toString('latin1', 0, Math.min(40, size)))}`);
  }
  const seqText = buf.toString('latin1', 7, 17);
  if (!/^\d{10}$/.test(seqText)) throw new Error(`bad sequence number ${JSON.stringify(seqText)}`);
  return { tag: buf.toString('latin1', 0, 6), seq: Number(seqText) };
}

export interface ChunkRef {
  readonly tag: string;
  readonly index: number;
}

/**
 * Splits a stream of whole chunks as it arrives. Each complete chunk is
 * checked: every record intact, one tag, consecutive sequence numbers
 * starting at a multiple of K. Bytes after the last whole chunk are kept as
 * `pending` (what a killed consumer got out of the chunk it was writing).
 * The first problem is kept in `error` (never thrown from a data handler).
 */
export class ChunkReader {
  readonly format: Format;
  readonly chunks: ChunkRef[] = [];
  bytes = 0;
  error: Error | undefined;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  readonly #onChunk: ((ref: ChunkRef) => void) | undefined;

  constructor(format: Format, onChunk?: (ref: ChunkRef) => void) {
    this.format = format;
    this.#onChunk = onChunk;
  }

  get pending(): Buffer {
    return Buffer.concat(this.#pending);
  }

  push(data: Buffer): void {
    this.bytes += data.length;
    if (this.error) return;
    const size = chunkBytes(this.format);
    this.#pending.push(data);
    this.#pendingBytes += data.length;
    if (this.#pendingBytes < size) return;
    let buf = Buffer.concat(this.#pending);
    let off = 0;
    try {
      while (buf.length - off >= size) {
        const ref = checkChunk(buf.subarray(off, off + size), this.format);
        this.chunks.push(ref);
        this.#onChunk?.(ref);
        off += size;
      }
    } catch (error) {
      this.error = new Error(`at output byte ${this.bytes - (buf.length - off)}: ${(error as Error).message}`);
    }
    buf = buf.subarray(off);
    this.#pending = buf.length > 0 ? [Buffer.from(buf)] : [];
    this.#pendingBytes = buf.length;
  }
}

/** Checks one whole chunk and says which it is. */
export function checkChunk(buf: Buffer, format: Format): ChunkRef {
  const { recordSize, perChunk } = format;
  let first: { tag: string; seq: number } | undefined;
  for (let i = 0; i < perChunk; i++) {
    const r = parseRecord(buf.subarray(i * recordSize, (i + 1) * recordSize), recordSize);
    if (!first) {
      if (r.seq % perChunk !== 0) throw new Error(`chunk does not start on a chunk boundary: ${r.tag} record ${r.seq}`);
      first = r;
    } else if (r.tag !== first.tag || r.seq !== first.seq + i) {
      throw new Error(`torn chunk: record ${i} of chunk ${first.tag}#${first.seq / perChunk} is ${r.tag} record ${r.seq}`);
    }
  }
  return { tag: first!.tag, index: first!.seq / perChunk };
}

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

// ---------------------------------------------------------------- processes

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly startedAt: number;
  /** When the first stdout byte arrived (undefined before). */
  firstOutputAt: number | undefined;
  stderr(): string;
  /** Stops reading stdout (the process blocks once the socket buffer is full). */
  pause(): void;
  /** Reads stdout as it comes. */
  flow(): void;
  /** Settles when the process has exited. */
  readonly exited: Promise<Exit>;
  /** Settles when it has exited and all of its stdout has been read (flowing). */
  readonly closed: Promise<Exit>;
  running(): boolean;
}

const tracked = new Set<Proc>();

export interface SpawnOptions {
  /** 'ignore' (/dev/null, the default), a file path, or an open descriptor (the caller closes it). */
  stdin?: 'ignore' | string | number;
  /** Called with every piece of stdout. */
  onData?: (data: Buffer) => void;
  /** Start with stdout not being read. */
  paused?: boolean;
  /** Run as this command prefix instead of the current node (e.g. setpriv ... node). */
  prefix?: readonly string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Path of bin/filebus to run (a copy reachable by another user). */
  bin?: string;
}

/** Starts `node bin/filebus ...args`, tracked for killAllTracked(). */
export function spawnFilebus(args: readonly string[], options: SpawnOptions = {}): Proc {
  let stdinFd: number | 'ignore' = 'ignore';
  let opened: number | undefined;
  if (typeof options.stdin === 'number') stdinFd = options.stdin;
  else if (options.stdin !== undefined && options.stdin !== 'ignore') stdinFd = opened = fs.openSync(options.stdin, 'r');
  const stdio: StdioOptions = [stdinFd, 'pipe', 'pipe'];
  const bin = options.bin ?? BIN;
  const [command, ...prefixArgs] = options.prefix ?? [process.execPath];
  const child = spawn(command!, [...prefixArgs, bin, ...args], { stdio, cwd: options.cwd, env: { ...process.env, ...options.env } });
  if (opened !== undefined) fs.closeSync(opened);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const out = child.stdout!;
  const onData = (d: Buffer): void => {
    if (proc.firstOutputAt === undefined) proc.firstOutputAt = Date.now();
    options.onData?.(d);
  };
  let exitedFlag = false;
  const exited = new Promise<Exit>((resolve) => child.on('exit', (code, signal) => { exitedFlag = true; resolve({ code, signal }); }));
  const closed = new Promise<Exit>((resolve) => child.on('close', (code, signal) => { tracked.delete(proc); resolve({ code, signal }); }));
  let flowing = false;
  // A paused stream needs a 'readable' listener, or Node resumes (and so
  // drains into nowhere) unread stdio when the child exits; a flowing one
  // must not have one, or 'data' waits for read() calls.
  const onReadable = (): void => {};
  const proc: Proc = {
    child,
    pid: child.pid!,
    startedAt: Date.now(),
    firstOutputAt: undefined,
    stderr: () => err,
    pause() {
      if (flowing) { out.off('data', onData); out.pause(); flowing = false; }
      if (out.listenerCount('readable') === 0) out.on('readable', onReadable);
    },
    flow() {
      if (flowing) return;
      flowing = true;
      out.off('readable', onReadable);
      out.on('data', onData);
      out.resume();
    },
    exited,
    closed,
    running: () => !exitedFlag && child.exitCode === null && child.signalCode === null,
  };
  tracked.add(proc);
  if (options.paused) proc.pause();
  else proc.flow();
  return proc;
}

/** SIGKILLs a process and waits for it to be gone (a flock it held is released by then). */
export async function sigkill(proc: Proc): Promise<Exit> {
  try { proc.child.kill('SIGKILL'); } catch { /* already gone */ }
  return proc.exited;
}

/** SIGKILLs every tracked process still running, and waits for them. */
export async function killAllTracked(): Promise<void> {
  const procs = [...tracked];
  for (const p of procs) {
    if (p.running()) { try { p.child.kill('SIGKILL'); } catch { /* gone */ } }
    p.flow();
  }
  await Promise.all(procs.map((p) => Promise.race([p.closed, delay(5000)])));
  tracked.clear();
}

/** Runs filebus to the end (or until timeoutMs, then SIGKILL). */
export async function runFilebus(
  args: readonly string[],
  options: SpawnOptions & { timeoutMs?: number } = {},
): Promise<Exit & { stdout: Buffer; stderr: string; timedOut: boolean }> {
  const out: Buffer[] = [];
  const proc = spawnFilebus(args, { ...options, onData: (d) => out.push(d) });
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; proc.child.kill('SIGKILL'); }, options.timeoutMs ?? 30_000);
  try {
    const exit = await proc.closed;
    return { ...exit, stdout: Buffer.concat(out), stderr: proc.stderr(), timedOut };
  } finally {
    clearTimeout(timer);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` every `everyMs` until true (ENOENT counts as not yet); throws after timeoutMs naming `what`. */
export async function until(check: () => boolean, what: string, timeoutMs = 30_000, everyMs = 2): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const look = (): boolean => {
    try {
      return check();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false; // not created yet
      throw error;
    }
  };
  while (!look()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(everyMs);
  }
}

export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms); }),
    ]);
  } finally {
    clearTimeout(timer);
  }
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

// -------------------------------------------------------------- bus on disk

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Names of filebus temporary files for bus `file` (`.BASE.HOST.PID.N.HEX.new`) and the reference's FILE.__new__. */
export function tempNames(file: string): string[] {
  const base = path.basename(file);
  return fs.readdirSync(path.dirname(file)).filter((n) => (n.startsWith(`.${base}.`) && n.endsWith('.new')) || n === `${base}.__new__`);
}

/** The pid in a filebus temporary name, or undefined. */
export function tempPid(file: string, name: string): number | undefined {
  const m = /^([A-Za-z0-9_-]+)\.(\d+)\.\d+\.[0-9a-f]{8}\.new$/.exec(name.slice(path.basename(file).length + 2));
  return m ? Number(m[2]) : undefined;
}

/** Whether someone holds an exclusive flock on `file` (undefined if it does not exist). */
export function lockHeld(file: string): boolean | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    flockSync(fd, 'shnb');
    flockSync(fd, 'un');
    return false;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return true;
    throw error;
  } finally {
    fs.closeSync(fd);
  }
}

export interface Segment {
  readonly seq: number;
  readonly crc: number;
  readonly name: string;
  readonly path: string;
}

export function segmentList(file: string): Segment[] {
  let names: string[];
  try {
    names = fs.readdirSync(`${file}.segments`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const out: Segment[] = [];
  for (const name of names) {
    const m = /^(\d{20})\.([0-9a-f]{8})$/.exec(name);
    if (m) out.push({ seq: Number(m[1]), crc: parseInt(m[2]!, 16), name, path: path.join(`${file}.segments`, name) });
  }
  return out.sort((a, b) => a.seq - b.seq);
}

export function segmentName(seq: number, data: Buffer): string {
  return `${String(seq).padStart(20, '0')}.${(crc32(data) >>> 0).toString(16).padStart(8, '0')}`;
}

export function cursorRecord(position: number): Buffer {
  const digits = String(position).padStart(20, '0');
  return Buffer.from(`${digits} ${(crc32(digits) >>> 0).toString(16).padStart(8, '0')}\n`);
}

/** The position in a cursor file (undefined if absent); throws on a bad record. */
export function readCursorFile(file: string): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'latin1');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const m = /^(\d{20}) ([0-9a-f]{8})\n$/.exec(text);
  if (!m || (crc32(m[1]!) >>> 0) !== parseInt(m[2]!, 16)) throw new Error(`bad cursor record in ${file}: ${JSON.stringify(text)}`);
  return Number(m[1]);
}

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
