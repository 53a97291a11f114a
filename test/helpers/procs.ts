/**
 * The process harness, for every test and for the bench (bench/lib/procs.ts
 * builds its timed, labelled processes on it): `startProcess` runs any
 * command, `startFilebus` runs `node bin/filebus`, `runFilebus` runs one
 * to the end.
 *
 * Every process started here gets its own process group (so a shell
 * pipeline can be killed whole) and is tracked until it has closed, so
 * `killAll()` in an afterEach (useBusDir in bus-dir.ts does it) ends
 * whatever a test left running. Its stdout is collected, hashed, handed to
 * a callback or left to the caller, and read at the test's pace (`pause`,
 * `flow`, `throttle`); its stderr is kept as text.
 *
 * This module must not import vitest: the bench runs it outside a test.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { Writable } from 'node:stream';
import { BIN } from './cli.js';
import { until } from './wait.js';

export { BIN };

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A process's exit with what it wrote (stdout is empty unless collected). */
export interface Ended extends Exit {
  stdout: Buffer;
  /** Bytes of stdout read, whatever the stdout mode. */
  bytes: number;
  stderr: string;
}

/**
 * Where the process's stdin comes from: a pipe the test writes
 * (`proc.stdin`), /dev/null ('ignore', the default), a file opened for
 * it, or a descriptor the caller opened (and closes).
 */
export type Stdin = 'pipe' | 'ignore' | { readonly file: string } | { readonly fd: number };

/**
 * What becomes of the process's stdout:
 * - 'collect' (default): every byte is kept (`stdout()`);
 * - 'hash': counted and hashed as it comes, nothing kept (`stdoutSha256()`);
 * - a function: handed each piece as it comes, nothing kept;
 * - 'unread': a pipe nobody reads, so the child blocks once it is full;
 *   what is left in it is thrown away when the child exits;
 * - 'closed': a pipe whose read end is closed at once, so the child's
 *   first write fails with EPIPE;
 * - 'pipe': a pipe the caller reads itself (`child.stdout`);
 * - 'ignore': /dev/null;
 * - a descriptor the caller opened (and closes).
 */
export type Stdout = 'collect' | 'hash' | ((data: Buffer) => void) | 'unread' | 'closed' | 'pipe' | 'ignore' | { readonly fd: number };

export interface StartOptions {
  readonly cwd?: string;
  /** Added to this process's environment; a variable set to undefined is left out. */
  readonly env?: NodeJS.ProcessEnv;
  readonly stdin?: Stdin;
  readonly stdout?: Stdout;
  /** Start with stdout not read ('collect', 'hash' or a function): see Proc.pause(). */
  readonly paused?: boolean;
  /** Descriptors 3, 4, ... of the child as pipes, read by the caller (`child.stdio[n]`). */
  readonly extraPipes?: number;
  /** Keep only the last this many characters of stderr (default: all of it). */
  readonly stderrLimit?: number;
}

export interface Proc {
  readonly child: ChildProcess;
  /** The child's pid, which is also its process group's id (-1 if it could not be started). */
  readonly pid: number;
  /** stdin, when started with stdin 'pipe'. */
  readonly stdin: Writable | null;
  /** Date.now() at the start. */
  readonly startedAt: number;
  /** Date.now() when the first stdout byte was read (undefined before). */
  readonly firstOutputAt: number | undefined;
  /** stdout collected so far (empty unless stdout is 'collect'). */
  stdout(): Buffer;
  /** Bytes of stdout read so far. */
  stdoutBytes(): number;
  /** sha256 (hex) of stdout ('collect' or 'hash'); for 'hash', once the process has closed. */
  stdoutSha256(): string;
  stderr(): string;
  /**
   * Stops reading stdout: the child blocks once the pipe is full. Unread
   * bytes stay in the pipe after it exits (a test can still read them with
   * flow()); `done` waits until they are read.
   */
  pause(): void;
  /** Reads stdout as fast as it comes (the default). */
  flow(): void;
  /** Reads exactly `bytesPerTick` bytes every `tickMs` milliseconds. */
  throttle(bytesPerTick: number, tickMs?: number): void;
  /** True until the process has exited. */
  running(): boolean;
  /** Sends `signal` to the process's whole group. */
  killGroup(signal?: NodeJS.Signals): void;
  /** Settles when the process has exited (its stdout may still hold unread bytes). */
  readonly exited: Promise<Exit>;
  /**
   * Settles when the process has exited and its stdio is closed (all its
   * stdout read). A process that could not be started ends with code 127
   * and the reason on stderr.
   */
  readonly done: Promise<Exit>;
  /** `done`, with the output. */
  readonly ended: Promise<Ended>;
}

const live = new Set<Proc>();

function stdinOf(stdin: Stdin): { stdio: 'pipe' | 'ignore' | number; opened?: number } {
  if (typeof stdin === 'string') return { stdio: stdin };
  if ('fd' in stdin) return { stdio: stdin.fd };
  const opened = fs.openSync(stdin.file, 'r');
  return { stdio: opened, opened };
}

/** Starts `command ...args`, tracked for killAll(), in a process group of its own. */
export function startProcess(command: string, args: readonly string[], options: StartOptions = {}): Proc {
  const stdin = stdinOf(options.stdin ?? 'ignore');
  const stdoutMode = options.stdout ?? 'collect';
  const stdio: StdioOptions = [
    stdin.stdio,
    stdoutMode === 'ignore' ? 'ignore' : typeof stdoutMode === 'object' ? stdoutMode.fd : 'pipe',
    'pipe',
    ...Array.from({ length: options.extraPipes ?? 0 }, () => 'pipe' as const),
  ];
  let child: ChildProcess;
  try {
    child = spawn(command, [...args], { cwd: options.cwd, stdio, env: { ...process.env, ...options.env }, detached: true });
  } finally {
    if (stdin.opened !== undefined) fs.closeSync(stdin.opened);
  }
  const startedAt = Date.now();
  let firstOutputAt: number | undefined;
  const chunks: Buffer[] = [];
  let bytes = 0;
  const hash = stdoutMode === 'hash' ? createHash('sha256') : undefined;
  let digest: string | undefined;
  let closed = false;
  let err = '';
  const limit = options.stderrLimit;
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => {
    err += text;
    if (limit !== undefined && err.length > limit) err = err.slice(-limit);
  });
  child.stdin?.on('error', () => { /* the child may exit before reading all its input */ });

  const out = child.stdout;
  const take = (data: Buffer): void => {
    bytes += data.length;
    firstOutputAt ??= Date.now();
    if (typeof stdoutMode === 'function') stdoutMode(data);
    else if (hash) hash.update(data);
    else chunks.push(data);
  };
  const reads = out !== null && (stdoutMode === 'collect' || stdoutMode === 'hash' || typeof stdoutMode === 'function');
  let flowing = false;
  let timer: NodeJS.Timeout | undefined;
  const stopTimer = (): void => {
    if (timer) clearInterval(timer);
    timer = undefined;
  };
  // A paused stream needs a 'readable' listener, or child_process resumes
  // (and so drains into nowhere) unread stdio when the child exits; a
  // flowing one must not have one, or 'data' waits for read() calls.
  const onReadable = (): void => {};
  if (out && stdoutMode === 'unread') out.pause();
  if (out && stdoutMode === 'closed') out.destroy();

  let exitedFlag = false;
  const exited = new Promise<Exit>((resolve) => {
    child.on('exit', (code, signal) => {
      exitedFlag = true;
      resolve({ code, signal });
    });
  });
  const done = new Promise<Exit>((resolve) => {
    const finish = (exit: Exit): void => {
      exitedFlag = true;
      closed = true;
      stopTimer();
      live.delete(proc);
      resolve(exit);
    };
    child.on('close', (code, signal) => finish({ code, signal }));
    child.on('error', (error) => {
      // Only a process that never started: it will not close.
      if (child.pid !== undefined) return;
      err += `${err && !err.endsWith('\n') ? '\n' : ''}spawn ${command} failed: ${error.message}\n`;
      finish({ code: 127, signal: null });
    });
  });

  const proc: Proc = {
    child,
    pid: child.pid ?? -1,
    stdin: child.stdin,
    startedAt,
    get firstOutputAt() { return firstOutputAt; },
    stdout: () => (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)),
    stdoutBytes: () => bytes,
    stdoutSha256() {
      if (stdoutMode === 'collect') return createHash('sha256').update(proc.stdout()).digest('hex');
      if (!hash) throw new Error(`stdout is not collected or hashed (stdout: ${String(stdoutMode)})`);
      if (!closed) throw new Error('stdout is still open: its sha256 is known once the process has closed');
      digest ??= hash.digest('hex');
      return digest;
    },
    stderr: () => err,
    pause() {
      if (!reads) throw new Error(`stdout ${String(stdoutMode)} is not read by the harness`);
      stopTimer();
      if (flowing) {
        out!.off('data', take);
        out!.pause();
        flowing = false;
      }
      if (out!.listenerCount('readable') === 0) out!.on('readable', onReadable);
    },
    flow() {
      if (!reads) throw new Error(`stdout ${String(stdoutMode)} is not read by the harness`);
      stopTimer();
      if (flowing) return;
      flowing = true;
      out!.off('readable', onReadable);
      out!.on('data', take);
      out!.resume();
    },
    throttle(bytesPerTick, tickMs = 2) {
      proc.pause();
      timer = setInterval(() => {
        // Once the stream has ended, read(n) hands over what is left even if less than n.
        const data = out!.read(bytesPerTick) as Buffer | null;
        if (data) take(data);
      }, tickMs);
    },
    running: () => !exitedFlag && child.exitCode === null && child.signalCode === null,
    killGroup(signal = 'SIGKILL') {
      if (child.pid === undefined) return;
      try { process.kill(-child.pid, signal); } catch { /* already gone */ }
    },
    exited,
    done,
    ended: done.then((exit) => ({ ...exit, stdout: proc.stdout(), bytes, stderr: err })),
  };
  if (reads) {
    if (options.paused) proc.pause();
    else proc.flow();
  }
  live.add(proc);
  return proc;
}

export interface FilebusOptions extends StartOptions {
  /** Run under this command prefix instead of this Node alone (e.g. strace ... node, setpriv ... node). */
  readonly prefix?: readonly string[];
  /** The bin/filebus to run (default: this repository's). */
  readonly bin?: string;
}

/** Starts `node bin/filebus ...args`. */
export function startFilebus(args: readonly string[], options: FilebusOptions = {}): Proc {
  const [command, ...prefixArgs] = options.prefix ?? [process.execPath];
  return startProcess(command!, [...prefixArgs, options.bin ?? BIN, ...args], options);
}

export interface RunOptions extends FilebusOptions {
  /** Written to stdin (a pipe), which is then closed. */
  readonly input?: Buffer | string;
  /** How long it may run (default 30 s); then its process group is killed. */
  readonly timeoutMs?: number;
  /**
   * What a run past timeoutMs does: 'throw' (the default) rejects naming
   * the command; 'report' resolves with `timedOut: true`, for tests in
   * which running on is an outcome to record.
   */
  readonly onTimeout?: 'throw' | 'report';
}

/** Runs `filebus ...args` to the end; stdin is `input` if given, else as `stdin` says. */
export async function runFilebus(args: readonly string[], options: RunOptions = {}): Promise<Ended & { timedOut: boolean }> {
  const proc = startFilebus(args, { ...options, ...(options.input !== undefined && { stdin: 'pipe' }) });
  if (options.input !== undefined) proc.stdin!.end(options.input);
  const timeoutMs = options.timeoutMs ?? 30_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.killGroup();
  }, timeoutMs);
  try {
    const ended = await proc.ended;
    if (timedOut && options.onTimeout !== 'report') {
      throw new Error(`filebus ${args.join(' ')} still running after ${timeoutMs} ms (killed); stderr: ${ended.stderr.slice(-2000) || '(empty)'}`);
    }
    return { ...ended, timedOut };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Kills (SIGKILL, whole process group) every tracked process, and waits
 * until each has closed: unread stdout is read and thrown away so that it
 * can. A process whose stdio some other process still holds open is let
 * go after 10 s.
 */
export async function killAll(): Promise<void> {
  const procs = [...live];
  for (const proc of procs) proc.killGroup();
  const waits = procs.map(async (proc) => {
    try { proc.flow(); } catch { /* stdout not read by the harness */ }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => { timer = setTimeout(resolve, 10_000); });
    await Promise.race([proc.done, late]);
    clearTimeout(timer);
    if (live.has(proc)) {
      for (const stream of proc.child.stdio) stream?.destroy();
      live.delete(proc);
    }
  });
  await Promise.all(waits);
}

/** How many started processes have not closed yet. */
export function liveCount(): number {
  return live.size;
}

/**
 * Runs `sh -c script sh ...args` with NODE (this Node) and BIN (bin/filebus)
 * in its environment, for tests that need a real shell pipeline or
 * redirection; resolves with its exit code and stderr once it ends.
 */
export async function runShell(script: string, args: readonly string[] = [], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stderr: string }> {
  const ended = await startProcess('sh', ['-c', script, 'sh', ...args], { stdout: 'ignore', env: { NODE: process.execPath, BIN, ...env } }).ended;
  return { code: ended.code, stderr: ended.stderr };
}

/** The children of a process, from /proc/PID/task/TID/children. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const text = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch { /* gone */ }
  return out;
}

/** The targets of a process's open descriptors (empty once it is gone). */
function openFiles(pid: number): string[] {
  let fds: string[] = [];
  try { fds = fs.readdirSync(`/proc/${pid}/fd`); } catch { /* not there yet, or gone */ }
  const targets: string[] = [];
  for (const fd of fds) {
    try { targets.push(fs.readlinkSync(`/proc/${pid}/fd/${fd}`)); } catch { /* closed meanwhile */ }
  }
  return targets;
}

/**
 * Whether the process, or one of its descendants down to `depth` (a
 * wrapper such as strace runs filebus as a child), has an inotify
 * instance open: a filebus watcher is in place (Node opens none on its own).
 */
export function hasInotify(pid: number, depth = 3): boolean {
  if (openFiles(pid).includes('anon_inode:inotify')) return true;
  return depth > 0 && childrenOf(pid).some((child) => hasInotify(child, depth - 1));
}

/**
 * Resolves once the process has an inotify descriptor open, i.e. once a
 * filebus with file monitoring has set up its watch and is about to look at
 * the bus; or, for a back-pressure consumer waiting for its turn to take
 * FILE, once it has the turn file `.BASE.taker` open (lock/taker-turn.ts).
 */
export async function waitForWatch(pid: number, timeoutMs = 15_000): Promise<void> {
  const watching = (): boolean => openFiles(pid).some((target) => target === 'anon_inode:inotify' || target.endsWith('.taker'));
  await until(watching, `process ${pid} to set up a file watch`, timeoutMs, { everyMs: 10 });
}
