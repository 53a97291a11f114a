/**
 * Helpers for the multicast tests: real `filebus` processes whose output the
 * test reads at a chosen pace, tagged records, and views of the on-disk
 * layout (FILE.segments/, FILE.consumers/).
 *
 * Every process and timer started here is tracked; `cleanup()` (call it in
 * afterEach) SIGKILLs what is still running and removes the temp dirs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { flockSync } from 'fs-ext';
import { BIN, tempDir } from './cli.js';

// ---------------------------------------------------------------- processes

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Ended extends Exit {
  /** Everything the process wrote to stdout (empty when started with keep: false). */
  stdout: Buffer;
  bytes: number;
  sha256: string;
  stderr: string;
}

/**
 * A filebus process whose stdout the test reads at its own pace:
 * - `flow()` (the default): read as fast as it comes;
 * - `pause()`: stop reading, so the process blocks writing once the socket
 *   buffer between us is full;
 * - `throttle(n, ms)`: read exactly n bytes every ms milliseconds.
 */
export interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Bytes of stdout received so far. */
  bytes(): number;
  /** stdout received so far (empty when keep: false). */
  output(): Buffer;
  stderr(): string;
  pause(): void;
  throttle(bytesPerTick: number, tickMs?: number): void;
  flow(): void;
  /** Resolves when the process has exited (stdout may still hold unread bytes). */
  exited: Promise<Exit>;
  /** Resolves when the process has exited and all of its stdout has been read. */
  done: Promise<Ended>;
  /** stdin, when started with stdin: 'pipe'. */
  readonly stdin: NodeJS.WritableStream | null;
}

const children = new Set<ChildProcess>();
const timers = new Set<NodeJS.Timeout>();
const dirs = new Set<string>();

export interface StartOptions {
  /** A file to use as stdin, 'pipe' for a pipe the test writes, or 'ignore' (an empty stdin: /dev/null). */
  stdin?: string | 'pipe' | 'ignore';
  /** Keep the output in memory (default true); otherwise only count and hash it. */
  keep?: boolean;
  /** Initial reading mode (default 'flow'). */
  mode?: 'flow' | 'pause';
}

export function start(args: readonly string[], options: StartOptions = {}): Proc {
  let stdin: 'pipe' | 'ignore' | number = 'ignore';
  if (options.stdin === 'pipe') stdin = 'pipe';
  else if (options.stdin !== undefined && options.stdin !== 'ignore') stdin = fs.openSync(options.stdin, 'r');
  const child = spawn(process.execPath, [BIN, ...args], { stdio: [stdin, 'pipe', 'pipe'] });
  if (typeof stdin === 'number') fs.closeSync(stdin);
  children.add(child);
  const keep = options.keep ?? true;
  const chunks: Buffer[] = [];
  const hash: Hash = createHash('sha256');
  let received = 0;
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const take = (b: Buffer): void => {
    received += b.length;
    hash.update(b);
    if (keep) chunks.push(b);
  };
  const out = child.stdout!;
  let timer: NodeJS.Timeout | undefined;
  let flowing = false;
  const stopTimer = (): void => {
    if (timer) { clearInterval(timer); timers.delete(timer); timer = undefined; }
  };
  const onData = (b: Buffer): void => take(b);
  // While the test paces the reading, a 'readable' listener keeps the stream
  // paused: without one, child_process resumes (and so drains into nowhere)
  // unread stdio streams when the child exits.
  const onReadable = (): void => {};
  const proc: Proc = {
    child,
    pid: child.pid!,
    stdin: child.stdin,
    bytes: () => received,
    output: () => Buffer.concat(chunks),
    stderr: () => err,
    pause() {
      stopTimer();
      if (flowing) { out.off('data', onData); out.pause(); flowing = false; }
      if (out.listenerCount('readable') === 0) out.on('readable', onReadable);
    },
    throttle(bytesPerTick, tickMs = 2) {
      proc.pause();
      timer = setInterval(() => {
        // Once the stream has ended, read(n) hands over what is left even if less than n.
        const b = out.read(bytesPerTick) as Buffer | null;
        if (b) take(b);
      }, tickMs);
      timers.add(timer);
    },
    flow() {
      stopTimer();
      if (flowing) return;
      flowing = true;
      out.off('readable', onReadable);
      out.on('data', onData);
      out.resume();
    },
    exited: new Promise<Exit>((resolve) => {
      child.on('exit', (code, signal) => resolve({ code, signal }));
    }),
    done: undefined as unknown as Promise<Ended>,
  };
  proc.done = new Promise<Ended>((resolve) => {
    child.on('close', (code, signal) => {
      stopTimer();
      children.delete(child);
      resolve({ code, signal, stdout: Buffer.concat(chunks), bytes: received, sha256: hash.digest('hex'), stderr: err });
    });
  });
  if ((options.mode ?? 'flow') === 'flow') proc.flow();
  else proc.pause();
  return proc;
}

/** Runs a filebus command to completion with stdin from /dev/null (or a file). */
export async function run(args: readonly string[], stdin?: string): Promise<Ended> {
  return start(args, { stdin: stdin ?? 'ignore' }).done;
}

/** SIGKILLs everything still running, stops timers and removes the temp dirs. */
export async function cleanup(): Promise<void> {
  for (const t of timers) clearInterval(t);
  timers.clear();
  const waits: Promise<unknown>[] = [];
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      waits.push(new Promise((resolve) => child.once('exit', resolve)));
      child.kill('SIGKILL');
    }
    child.stdout?.destroy();
    child.stderr?.destroy();
    child.stdin?.destroy();
  }
  children.clear();
  await Promise.all(waits);
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

/** A fresh directory removed by cleanup(). */
export function scratch(): string {
  const dir = tempDir('filebus-multicast-');
  dirs.add(dir);
  return dir;
}

/** The common arguments of a multicast command on `file`. */
export function mc(file: string, ...args: string[]): string[] {
  return ['--filename', file, '--multicast', ...args];
}

// ------------------------------------------------------------------ waiting

/** Polls `check` every 5 ms until it returns true; fails naming `what` (and `detail()`) after timeoutMs. */
export async function until(check: () => boolean, what: string, timeoutMs = 20_000, detail?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail ? `: ${detail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export { within } from './cli.js';

// ------------------------------------------------------------ on-disk layout

const SEGMENT = /^(\d{20})\.([0-9a-f]{8})$/;

export interface SegmentFile {
  seq: number;
  crc: number;
  name: string;
  path: string;
}

export function segmentsDirOf(file: string): string {
  return `${file}.segments`;
}

export function consumersDirOf(file: string): string {
  return `${file}.consumers`;
}

/** The segment files of the bus, oldest first. */
export function segments(file: string): SegmentFile[] {
  const dir = segmentsDirOf(file);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const out: SegmentFile[] = [];
  for (const name of names) {
    const m = SEGMENT.exec(name);
    if (m) out.push({ seq: Number(m[1]), crc: parseInt(m[2]!, 16), name, path: path.join(dir, name) });
  }
  return out.sort((a, b) => a.seq - b.seq);
}

/** Every entry of FILE.segments (segment or not). */
export function segmentDirEntries(file: string): string[] {
  try {
    return fs.readdirSync(segmentsDirOf(file));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** `cat FILE.segments/*`: the files of the directory, in sorted name order, concatenated. */
export function catSegments(file: string): Buffer {
  const dir = segmentsDirOf(file);
  return Buffer.concat(fs.readdirSync(dir).sort().map((name) => fs.readFileSync(path.join(dir, name))));
}

export function cursorPath(file: string, name: string): string {
  return path.join(consumersDirOf(file), `${name}.cursor`);
}

/** The cursor files present (names without `.cursor`). */
export function cursorIds(file: string): string[] {
  try {
    return fs.readdirSync(consumersDirOf(file)).filter((n) => n.endsWith('.cursor')).map((n) => n.slice(0, -7)).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/**
 * Whether consumer `name`'s cursor exists with its first record written (a
 * consumer creates the file, then writes the record, both under the bus lock).
 */
export function registered(file: string, name: string): boolean {
  try {
    return fs.statSync(cursorPath(file, name)).size === 30;
  } catch {
    return false;
  }
}

/**
 * Whether nobody holds the bus lock (FILE.lock) right now. A consumer holds
 * it while it registers; stopping one (SIGSTOP) before it lets go would
 * wedge the bus.
 */
export function busLockFree(file: string): boolean {
  const fd = fs.openSync(`${file}.lock`, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o666);
  try {
    flockSync(fd, 'exnb');
    flockSync(fd, 'un');
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return false;
    throw error;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The position recorded in a cursor file: the next segment its consumer will
 * emit. Checks the 30-byte record format. Undefined if the file is gone.
 */
export function readCursor(file: string): number | undefined {
  let record = Buffer.alloc(0);
  // The owner rewrites the record in place: a read racing that may see it
  // torn, as filebus itself allows for; a second look sees it whole.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      record = fs.readFileSync(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const m = /^(\d{20}) ([0-9a-f]{8})\n$/.exec(record.toString('latin1'));
    if (record.length === 30 && m && (crc32(m[1]!) >>> 0) === parseInt(m[2]!, 16)) return Number(m[1]);
  }
  throw new Error(`cursor ${file} is not a valid 30-byte record: ${JSON.stringify(record.toString('latin1'))}`);
}

/** Temporary files (`.BASE.<pid>.<n>.<hex>.new`) beside FILE, optionally only a given pid's. */
export function tempFiles(file: string, pid?: number): string[] {
  // Temporary names are `.BASE.HOST.PID.N.HEX.new`.
  const base = path.basename(file);
  return fs.readdirSync(path.dirname(file)).filter((n) => {
    if (!n.startsWith(`.${base}.`) || !n.endsWith('.new')) return false;
    return pid === undefined || n.slice(base.length + 2).split('.')[1] === String(pid);
  });
}

/**
 * Counts the entries of FILE.segments every `everyMs` until stopped; returns
 * the samples. Runs on this process's event loop, so keep the loop free.
 */
export function sampleSegmentCount(file: string, everyMs = 20): { stop(): number[]; samples: number[] } {
  const samples: number[] = [];
  const timer = setInterval(() => samples.push(segmentDirEntries(file).length), everyMs);
  timers.add(timer);
  return {
    samples,
    stop() {
      clearInterval(timer);
      timers.delete(timer);
      samples.push(segmentDirEntries(file).length);
      return samples;
    },
  };
}

// ------------------------------------------------------------ tagged records

/** Size of a tagged record; block sizes used with records are multiples of it. */
export const RECORD = 64;

/**
 * Record `seq` of stream `tag`: `<tag> <seq, 10 digits> <filler>\n`, 64
 * bytes, where the filler depends on tag and seq, so a record torn or
 * spliced from two others does not parse.
 */
export function record(tag: string, seq: number): Buffer {
  const head = `${tag} ${String(seq).padStart(10, '0')} `;
  let filler = '';
  for (let i = head.length; i < RECORD - 1; i++) filler += String.fromCharCode(97 + ((seq * 7 + i * 13 + tag.charCodeAt(0)) % 26));
  return Buffer.from(`${head}${filler}\n`, 'latin1');
}

/** Records 0..count-1 of `tag`. */
export function records(tag: string, count: number, first = 0): Buffer {
  const out = Buffer.alloc(count * RECORD);
  for (let i = 0; i < count; i++) record(tag, first + i).copy(out, i * RECORD);
  return out;
}

export interface Tagged {
  tag: string;
  seq: number;
}

/** Parses records; throws on a torn or invalid one (naming its offset). */
export function parseRecords(data: Buffer): Tagged[] {
  if (data.length % RECORD !== 0) throw new Error(`${data.length} bytes is not a whole number of ${RECORD}-byte records`);
  const out: Tagged[] = [];
  for (let off = 0; off < data.length; off += RECORD) {
    const text = data.toString('latin1', off, off + RECORD);
    const m = /^([A-Za-z]) (\d{10}) /.exec(text);
    if (!m || !record(m[1]!, Number(m[2])).equals(data.subarray(off, off + RECORD))) {
      throw new Error(`invalid record at byte ${off}: ${JSON.stringify(text)}`);
    }
    out.push({ tag: m[1]!, seq: Number(m[2]) });
  }
  return out;
}

/** Writes `data` to a file in `dir` and returns its path. */
export function writeInput(dir: string, name: string, data: Buffer): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, data);
  return file;
}
