/**
 * Processes for the benchmark: every process started here is tracked, has
 * its own process group (so a pipeline run through bash can be killed
 * whole), keeps the tail of its stderr, and knows whether its way of ending
 * counts as a failure.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import fs from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';

export const now = (): bigint => process.hrtime.bigint();
export const secondsBetween = (from: bigint, to: bigint): number => Number(to - from) / 1e9;

const STDERR_TAIL = 64 * 1024;
const live = new Set<Proc>();

export interface StartOptions {
  readonly stdio: StdioOptions;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

/** Environment for children: the caller's, without anything tsx or a profiler put in NODE_OPTIONS. */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['NODE_OPTIONS'];
  // Set on some machines (this one) for TLS tools: every Node process then
  // reads a certificate bundle as it starts, about 35 ms that filebus never
  // uses and the harness would count as filebus start-up. The report's
  // machine line says when it was set.
  delete env['NODE_EXTRA_CA_CERTS'];
  return { ...env, ...extra };
}

export class Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly startedAt: bigint;
  exitedAt: bigint | undefined;
  code: number | null = null;
  signal: NodeJS.Signals | null = null;
  /** Set when the harness ends this process on purpose (lossy consumers never end by themselves). */
  killedByUs = false;
  #stderr = '';
  /** Settles when the process has exited and its stdio is closed. */
  readonly done: Promise<void>;

  constructor(name: string, argv: readonly string[], options: StartOptions) {
    const [command, ...args] = argv;
    if (command === undefined) throw new Error(`${name}: empty command`);
    this.name = name;
    this.startedAt = now();
    this.child = spawn(command, args, {
      stdio: options.stdio,
      env: options.env ?? childEnv(),
      cwd: options.cwd,
      detached: true,
    });
    if (this.child.pid === undefined) {
      // spawn reports ENOENT asynchronously; make it a failure of this process.
      this.pid = -1;
    } else {
      this.pid = this.child.pid;
    }
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (text: string) => {
      this.#stderr = (this.#stderr + text).slice(-STDERR_TAIL);
    });
    this.child.on('exit', (code, signal) => {
      this.exitedAt = now();
      this.code = code;
      this.signal = signal;
    });
    live.add(this);
    this.done = new Promise<void>((resolve) => {
      this.child.on('error', (error) => {
        this.#stderr += `\n${error.message}`;
        this.code ??= 127;
        this.exitedAt ??= now();
        live.delete(this);
        resolve();
      });
      this.child.on('close', () => {
        live.delete(this);
        resolve();
      });
    });
  }

  get stderr(): string {
    return this.#stderr;
  }

  get running(): boolean {
    return this.exitedAt === undefined;
  }

  stdin(): Writable {
    if (!this.child.stdin) throw new Error(`${this.name}: stdin is not a pipe`);
    return this.child.stdin;
  }

  /** Descriptor `fd` of the child as a stream (stdout is 1; extra pipes start at 3). */
  output(fd = 1): Readable {
    const stream = this.child.stdio[fd] as Readable | null | undefined;
    if (!stream) throw new Error(`${this.name}: fd ${fd} is not a pipe`);
    return stream;
  }

  /** Ends the process on purpose: SIGTERM to it alone, so filebus can clean up as it would for a user. */
  stop(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.running) return;
    this.killedByUs = true;
    try { process.kill(this.pid, signal); } catch { /* already gone */ }
  }

  /** Kills the whole process group at once (pipelines, hung runs). */
  killGroup(): void {
    this.killedByUs = true;
    try { process.kill(-this.pid, 'SIGKILL'); } catch { /* already gone */ }
  }

  /**
   * A filebus consumer we stopped with SIGTERM that exits 1 with an
   * unhandled ERR_FILEBUS_ABORTED instead of dying of the signal: a known
   * filebus bug (the CLI's consumer loop leaves the Consumer's 'error'
   * event unhandled). Not a failure of the benchmark's data path, so it is
   * reported as a warning.
   */
  knownIssue(): string | undefined {
    if (this.killedByUs && this.code === 1 && this.#stderr.includes('ERR_FILEBUS_ABORTED')) {
      return 'filebus consumers stopped with SIGTERM exit with status 1 and an unhandled ERR_FILEBUS_ABORTED error instead of dying of the signal (status 143)';
    }
    return undefined;
  }

  /** Why this process's ending is a failure, or undefined if it is not. */
  failure(): string | undefined {
    if (this.running) return `${this.name} (pid ${this.pid}) still running`;
    if (this.code === 0) return undefined;
    if (this.killedByUs && (this.signal === 'SIGTERM' || this.signal === 'SIGKILL' || this.code === 143)) return undefined;
    if (this.knownIssue()) return undefined;
    const how = this.code !== null ? `exited with status ${this.code}` : `died of ${this.signal}`;
    const tail = this.#stderr.trim().split('\n').slice(-5).join(' | ');
    return `${this.name} (pid ${this.pid}) ${how}${tail ? `: ${tail}` : ''}`;
  }
}

/** Kills every process the harness started that is still running. */
export function killAll(): void {
  for (const proc of live) proc.killGroup();
}

export function liveCount(): number {
  return live.size;
}

/** Rejects after `ms` with a message naming what hung. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result after ${Math.round(ms / 1000)} s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `condition` every `everyMs` until it holds (true) or `timeoutMs` passes (false). */
export async function waitUntil(condition: () => boolean, timeoutMs: number, everyMs = 10): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (condition()) return true;
    if (Date.now() >= deadline) return false;
    await delay(everyMs);
  }
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

/**
 * Whether the process, or one of its descendants (a wrapper such as strace
 * runs filebus as a child), has an inotify instance: a filebus watcher is in place.
 */
export function hasInotify(pid: number, depth = 3): boolean {
  let fds: string[] = [];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch { /* gone, or not ours */ }
  for (const fd of fds) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:inotify') return true;
    } catch { /* closed meanwhile */ }
  }
  return depth > 0 && childrenOf(pid).some((child) => hasInotify(child, depth - 1));
}

/**
 * Peak memory of a running process, from /proc/PID/status every `everyMs`:
 * VmHWM (the kernel's own high-water mark of the resident set) and, as a
 * fallback, the largest VmRSS seen. A process started with the preload in
 * hwm-preload.cjs also reports its VmHWM at exit (`exitHwmKb`).
 */
export class MemoryWatch {
  readonly pid: number;
  hwmKb = 0;
  maxRssKb = 0;
  samples = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(pid: number, everyMs = 50) {
    this.pid = pid;
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), everyMs);
  }

  #sample(): void {
    let status: string;
    try {
      status = fs.readFileSync(`/proc/${this.pid}/status`, 'latin1');
    } catch {
      return;
    }
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    if (hwm) this.hwmKb = Math.max(this.hwmKb, Number(hwm[1]));
    if (rss) this.maxRssKb = Math.max(this.maxRssKb, Number(rss[1]));
    if (hwm || rss) this.samples += 1;
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** The best estimate of peak RSS in MiB (decimal-free): the exit report if any, else the polled maximum. */
  peakMiB(exitHwmKb?: number): number {
    return Math.max(exitHwmKb ?? 0, this.hwmKb, this.maxRssKb) / 1024;
  }
}
