/**
 * Process helpers for the CLI tests, beside cli.ts: every process started
 * here is tracked so a test's afterEach can kill whatever is still running,
 * and stdout can be hashed on the fly instead of buffered (for streams of a
 * gigabyte).
 */
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { flock } from 'fs-ext';
import { BIN } from './cli.js';

export { BIN };

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  /** Bytes of stdout collected so far (empty when stdout is hashed or ignored). */
  stdout(): Buffer;
  /** Number of stdout bytes seen so far. */
  stdoutBytes(): number;
  /** sha256 (hex) of all stdout, available once the process has closed (stdout: 'hash'). */
  stdoutSha256(): string;
  stderr(): string;
  /** Settles when the process has exited and its stdio is closed. */
  done: Promise<Exit>;
  /** True while the process has not exited. */
  running(): boolean;
}

export interface StartOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** 'pipe' (default): the test writes stdin; a string: path of a file opened as stdin; 'ignore': /dev/null. */
  stdin?: 'pipe' | 'ignore' | { file: string };
  /**
   * 'collect' (default): keep every stdout byte; 'hash': hash incrementally,
   * keep nothing; 'paused': a pipe nobody reads, so the child blocks once
   * it is full; 'closed': a pipe whose read end the test closes at once, so
   * the child's first write fails with EPIPE; 'ignore': /dev/null.
   */
  stdout?: 'collect' | 'hash' | 'paused' | 'closed' | 'ignore';
}

const live = new Set<Proc>();

/** Starts any command, tracked for killAll(). It gets its own process group. */
export function startProcess(command: string, args: readonly string[], options: StartOptions = {}): Proc {
  const stdinOpt = options.stdin ?? 'pipe';
  const stdinFd = typeof stdinOpt === 'object' ? fs.openSync(stdinOpt.file, 'r') : undefined;
  const stdoutMode = options.stdout ?? 'collect';
  const stdio: StdioOptions = [
    stdinFd ?? stdinOpt as 'pipe' | 'ignore',
    stdoutMode === 'ignore' ? 'ignore' : 'pipe',
    'pipe',
  ];
  const child = spawn(command, [...args], {
    cwd: options.cwd,
    stdio,
    env: { ...process.env, ...options.env },
    detached: true,
  });
  if (stdinFd !== undefined) fs.closeSync(stdinFd);
  const out: Buffer[] = [];
  let outBytes = 0;
  const hash = createHash('sha256');
  let digest: string | undefined;
  let err = '';
  if (child.stdout) {
    if (stdoutMode === 'paused') {
      child.stdout.pause();
    } else if (stdoutMode === 'closed') {
      child.stdout.destroy();
    } else {
      child.stdout.on('data', (d: Buffer) => {
        outBytes += d.length;
        if (stdoutMode === 'hash') hash.update(d);
        else out.push(d);
      });
    }
  }
  child.stdin?.on('error', () => { /* the child may exit before reading all its input */ });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  let exited = false;
  child.on('exit', () => { exited = true; });
  const done = new Promise<Exit>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      exited = true;
      live.delete(proc);
      resolve({ code, signal });
    });
  });
  const proc: Proc = {
    child,
    pid: child.pid!,
    stdout: () => (out.length === 1 ? out[0]! : Buffer.concat(out)),
    stdoutBytes: () => outBytes,
    stdoutSha256: () => {
      if (stdoutMode !== 'hash') throw new Error('stdout is not hashed');
      digest ??= hash.digest('hex');
      return digest;
    },
    stderr: () => err,
    done,
    running: () => !exited && child.exitCode === null && child.signalCode === null,
  };
  live.add(proc);
  return proc;
}

/** Starts `node bin/filebus ...args`. */
export function startFilebus(args: readonly string[], options: StartOptions = {}): Proc {
  return startProcess(process.execPath, [BIN, ...args], options);
}

/** Runs `filebus ...args` to the end, with `input` on stdin (or stdin from a file). */
export async function runFilebus(
  args: readonly string[],
  options: StartOptions & { input?: Buffer | string; timeoutMs?: number } = {},
): Promise<Exit & { stdout: Buffer; stderr: string }> {
  const proc = startFilebus(args, options);
  if (proc.child.stdin) proc.child.stdin.end(options.input ?? '');
  const exit = await withTimeout(proc.done, options.timeoutMs ?? 30_000, `filebus ${args.join(' ')}`);
  return { ...exit, stdout: proc.stdout(), stderr: proc.stderr() };
}

/** Kills (SIGKILL, whole process group) every tracked process still running, and waits for them. */
export async function killAll(): Promise<void> {
  const procs = [...live];
  for (const proc of procs) {
    try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  await Promise.all(procs.map((p) => p.done.catch(() => undefined)));
}

import { within as withTimeout } from './cli.js';
export { withTimeout };

/**
 * Resolves once the process has an inotify descriptor open, i.e. once a
 * filebus with file monitoring has set up its watch and is about to look at
 * the bus (Node opens none on its own); or, for a back-pressure consumer
 * waiting for its turn to take FILE, once it has the turn file
 * `.BASE.taker` open (lock/taker-turn.ts).
 */
export async function waitForWatch(pid: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let fds: string[] = [];
    try { fds = fs.readdirSync(`/proc/${pid}/fd`); } catch { /* not there yet, or gone */ }
    for (const fd of fds) {
      try {
        const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (target === 'anon_inode:inotify' || target.endsWith('.taker')) return;
      } catch { /* closed meanwhile */ }
    }
    if (Date.now() > deadline) throw new Error(`process ${pid} set up no file watch within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Every entry under dir (recursive), as sorted relative paths; directories end with '/', symlinks show their target. */
export function listTree(dir: string): string[] {
  const result: string[] = [];
  const walk = (rel: string): void => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const name = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        result.push(`${name}/`);
        walk(name);
      } else if (entry.isSymbolicLink()) {
        result.push(`${name} -> ${fs.readlinkSync(path.join(dir, name))}`);
      } else {
        result.push(name);
      }
    }
  };
  walk('');
  return result.sort();
}

/** The names in dir that look like a filebus temporary file for bus file `base`, or the reference's FILE.__new__. */
export function tempFilesFor(dir: string, base: string): string[] {
  return fs.readdirSync(dir).filter((n) => (n.startsWith(`.${base}.`) && n.endsWith('.new')) || n === `${base}.__new__`);
}

/**
 * Node source for a deterministic byte stream: AES-128-CTR keystream from a
 * seed. Run as `node -e GENERATOR_SOURCE <bytes> <seed> <digestFile>`: writes
 * exactly <bytes> bytes to stdout honouring back-pressure, then writes
 * "<sha256 hex> <bytes>" of what it wrote to <digestFile>.
 */
export const GENERATOR_SOURCE = String.raw`
const crypto = require('node:crypto');
const fs = require('node:fs');
const total = Number(process.argv[1]);
const key = crypto.createHash('sha256').update(String(process.argv[2])).digest().subarray(0, 16);
const cipher = crypto.createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
const hash = crypto.createHash('sha256');
const zeros = Buffer.alloc(1 << 20);
let left = total;
function pump() {
  while (left > 0) {
    const n = Math.min(left, zeros.length);
    const block = cipher.update(zeros.subarray(0, n));
    left -= n;
    hash.update(block);
    if (!process.stdout.write(block)) return process.stdout.once('drain', pump);
  }
  process.stdout.end(() => fs.writeFileSync(process.argv[3], hash.digest('hex') + ' ' + total));
}
pump();
`;

/**
 * Whether someone holds an exclusive flock on `lockFile` right now, asked
 * with flock(1) on a read-only descriptor (so a missing lock file is not
 * created: it reports 'absent').
 */
export function lockState(lockFile: string): 'held' | 'free' | 'absent' {
  const result = spawnSync('bash', ['-c', 'exec 3<"$1" || exit 98; flock -n -E 99 3', 'bash', lockFile], { stdio: ['ignore', 'ignore', 'ignore'] });
  if (result.status === 0) return 'free';
  if (result.status === 99) return 'held';
  if (result.status === 98) return 'absent';
  throw new Error(`flock(1) failed: status ${result.status}, signal ${result.signal}`);
}

/**
 * Runs `fn` while holding an exclusive flock on a file in the OS temp dir,
 * shared by every vitest worker: tests that hog the CPU (the 1 GiB round
 * trip) and tests with timing in them (50 ms apart messages in lossy mode)
 * take turns instead of running side by side on a 2-core machine. The
 * kernel drops the lock if a worker dies.
 */
export async function exclusively<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const fd = fs.openSync(path.join(os.tmpdir(), `filebus-cli-tests.${name}.lock`), 'a');
  try {
    await new Promise<void>((resolve, reject) => flock(fd, 'ex', (error) => (error ? reject(error) : resolve())));
    return await fn();
  } finally {
    fs.closeSync(fd); // releases the lock
  }
}
