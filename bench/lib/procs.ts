/**
 * Processes for the benchmark, on the test suite's process harness
 * (test/helpers/procs.ts: its own process group each, tracked until
 * closed): a Proc adds a name for reports, the timing clock, a capped
 * stderr tail, and whether its way of ending counts as a failure.
 */
import fs from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { startProcess, type Proc as Harnessed, type Stdin, type Stdout } from '../../test/helpers/procs.js';

export { hasInotify, killAll, liveCount } from '../../test/helpers/procs.js';
export { within as withTimeout } from '../../test/helpers/wait.js';

export const now = (): bigint => process.hrtime.bigint();
export const secondsBetween = (from: bigint, to: bigint): number => Number(to - from) / 1e9;

const STDERR_TAIL = 64 * 1024;

export interface StartOptions {
  readonly stdin: Stdin;
  /** 'pipe' (read by a Sink, `output()`) or 'ignore'. */
  readonly stdout: Extract<Stdout, 'pipe' | 'ignore'>;
  /** Descriptors 3, 4, ... as pipes (shell baselines write their outputs there). */
  readonly extraPipes?: number;
  /** Default: childEnv(). */
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

/**
 * What children change in this process's environment: nothing that tsx or
 * a profiler put in NODE_OPTIONS (a variable set to undefined is left out).
 */
export function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  // NODE_EXTRA_CA_CERTS is set on some machines (this one) for TLS tools:
  // every Node process then reads a certificate bundle as it starts, about
  // 35 ms that filebus never uses and the harness would count as filebus
  // start-up. The report's machine line says when it was set.
  return { NODE_OPTIONS: undefined, NODE_EXTRA_CA_CERTS: undefined, ...extra };
}

export class Proc {
  readonly name: string;
  readonly proc: Harnessed;
  readonly startedAt: bigint;
  exitedAt: bigint | undefined;
  code: number | null = null;
  signal: NodeJS.Signals | null = null;
  /** Set when the harness ends this process on purpose (lossy consumers never end by themselves). */
  killedByUs = false;
  /** Settles when the process has exited and its stdio is closed. */
  readonly done: Promise<void>;

  constructor(name: string, argv: readonly string[], options: StartOptions) {
    const [command, ...args] = argv;
    if (command === undefined) throw new Error(`${name}: empty command`);
    this.name = name;
    this.startedAt = now();
    this.proc = startProcess(command, args, {
      stdin: options.stdin,
      stdout: options.stdout,
      extraPipes: options.extraPipes,
      env: options.env ?? childEnv(),
      cwd: options.cwd,
      stderrLimit: STDERR_TAIL,
    });
    this.proc.child.on('exit', (code, signal) => {
      this.exitedAt = now();
      this.code = code;
      this.signal = signal;
    });
    this.done = this.proc.done.then((exit) => {
      // A process that could not be started never exits: its end is its failure to start.
      this.exitedAt ??= now();
      this.code ??= exit.code;
      this.signal ??= exit.signal;
    });
  }

  get pid(): number {
    return this.proc.pid;
  }

  get stderr(): string {
    return this.proc.stderr();
  }

  get running(): boolean {
    return this.exitedAt === undefined;
  }

  stdin(): Writable {
    if (!this.proc.stdin) throw new Error(`${this.name}: stdin is not a pipe`);
    return this.proc.stdin;
  }

  /** Descriptor `fd` of the child as a stream (stdout is 1; extra pipes start at 3). */
  output(fd = 1): Readable {
    const stream = this.proc.child.stdio[fd] as Readable | null | undefined;
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
    this.proc.killGroup();
  }

  /**
   * A filebus consumer we stopped with SIGTERM that exits 1 with an
   * unhandled ERR_FILEBUS_ABORTED instead of dying of the signal: a known
   * filebus bug (the CLI's consumer loop leaves the Consumer's 'error'
   * event unhandled). Not a failure of the benchmark's data path, so it is
   * reported as a warning.
   */
  knownIssue(): string | undefined {
    if (this.killedByUs && this.code === 1 && this.stderr.includes('ERR_FILEBUS_ABORTED')) {
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
    const tail = this.stderr.trim().split('\n').slice(-5).join(' | ');
    return `${this.name} (pid ${this.pid}) ${how}${tail ? `: ${tail}` : ''}`;
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
