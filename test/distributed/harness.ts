/**
 * Runs the real filebus CLI across the two mounts of setup.sh: a producer
 * through mount A ("host A"), consumers through mount B ("host B") and
 * optionally through A, on one bus, and checks what each consumer wrote
 * against the input, byte for byte.
 *
 * Used by gluster.test.ts (assertions) and crosshost.ts (the matrix of
 * docs/distributed-findings.md).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startFilebus, type Proc, type Stdin } from '../helpers/procs.js';

export type Mode = 'lossy' | 'back-pressure' | 'multicast';
export type Host = 'A' | 'B';

export function mounts(): { A: string; B: string } | undefined {
  const A = process.env.FILEBUS_MOUNT_A;
  const B = process.env.FILEBUS_MOUNT_B;
  return A && B ? { A, B } : undefined;
}

export interface ConsumerSpec {
  host: Host;
  /** Extra flags, e.g. ['--no-file-monitoring', '--sleep-interval', '0.05']. */
  flags?: string[];
}

export interface Scenario {
  mode: Mode;
  /** Input size in bytes (random). */
  size: number;
  consumers: ConsumerSpec[];
  producerHost?: Host;
  producerFlags?: string[];
  /** Flags for every process of the scenario, e.g. ['--lock', 'mkdir']. */
  busFlags?: string[];
  /** Lossy: the producer gets one block every this many ms, so consumers can keep up. */
  throttleMs?: number;
  blockSize?: number;
  /** How long to wait for everything to finish before calling it a hang. */
  timeoutMs?: number;
}

export interface Segment {
  /** Offset in the input where this run of output bytes came from (-1: not found). */
  from: number;
  length: number;
}

export interface ConsumerResult {
  host: Host;
  flags: string[];
  code: number | null;
  signal: string | null;
  /** Killed by the harness (lossy consumers never end; others only on a hang). */
  killed: boolean;
  bytes: number;
  exact: boolean;
  sha256: string;
  stderr: string;
  segments: Segment[];
  /** Output bytes that match no input (torn or foreign data). */
  garbageBytes: number;
  /** Segments that start before the end of the one before: stale or repeated data. */
  backwardsSegments: number;
  /** Input bytes skipped between segments, and after the last one. */
  skippedBytes: number;
  /** Whether the last block of input was delivered. */
  sawLast: boolean;
}

export interface ScenarioResult {
  scenario: Scenario;
  producer: { code: number | null; signal: string | null; stderr: string; killed: boolean };
  consumers: ConsumerResult[];
  /** Some process had to be killed because it did not finish in time (lossy consumers aside). */
  hang: boolean;
  /** For several back-pressure consumers: every input byte exactly once across all outputs. */
  unionExact?: boolean;
  /** When unionExact is false: the blocks delivered twice or more, and those never delivered. */
  unionFaults?: { repeated: number[]; missing: number[] };
  seconds: number;
}

/** A filebus process of a scenario (from the shared harness), and whether the scenario had to kill it. */
export interface Running {
  readonly proc: Proc;
  killed: boolean;
}

export function start(args: string[], stdin: Stdin): Running {
  return { proc: startFilebus(args, { stdin }), killed: false };
}

export function kill(run: Running): void {
  if (!run.proc.running()) return;
  run.killed = true;
  run.proc.killGroup();
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function finishedWithin(runs: Running[], ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => { timer = setTimeout(() => r(false), ms); });
  const all = Promise.all(runs.map((r) => r.proc.done)).then(() => true as const);
  try {
    return await Promise.race([all, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Splits `output` into runs of bytes copied from `input`: random input makes
 * a 32-byte needle unique, so each run is found with one indexOf and then
 * extended as far as the bytes agree.
 *
 * Extending as far as the bytes agree can run past a chunk's end: when the
 * next chunk delivered is not the next in the input, its first byte equals
 * the byte that follows the run one time in 256 (two bytes, one in 65,536),
 * and the run would take it, making the next run start one byte late: a
 * block delivered twice and another never, by one byte each, where every
 * block was delivered once. So where a run does not continue the one
 * before, the boundary between them moves to where a chunk starts (a
 * multiple of `blockSize` in the input) if the bytes allow it.
 */
export function segmentsOf(input: Buffer, output: Buffer, blockSize?: number): Segment[] {
  const NEEDLE = 32;
  const segments: Segment[] = [];
  let o = 0;
  let hint = 0;
  while (o < output.length) {
    const needle = output.subarray(o, Math.min(output.length, o + NEEDLE));
    // Most runs continue where the last one ended, or later: look there first.
    let from = input.indexOf(needle, hint);
    if (from < 0) from = input.indexOf(needle);
    if (from < 0) {
      segments.push({ from: -1, length: needle.length });
      o += needle.length;
      continue;
    }
    let length = 0;
    while (o + length < output.length && from + length < input.length && output[o + length] === input[from + length]) length += 1;
    const previous = segments.at(-1);
    if (blockSize && previous && previous.from >= 0 && from !== previous.from + previous.length) {
      const back = alignedStart(input, output, o, from, previous.length, blockSize);
      previous.length -= back;
      from -= back;
      length += back;
      o -= back;
    }
    segments.push({ from, length });
    o += length;
    hint = from + length;
  }
  // Merge runs that continue each other (they were cut only by our needle search).
  const merged: Segment[] = [];
  for (const s of segments) {
    const last = merged.at(-1);
    if (last && last.from >= 0 && s.from === last.from + last.length) last.length += s.length;
    else merged.push({ ...s });
  }
  return merged;
}

/**
 * How many bytes the run found at input offset `from` (output offset `o`)
 * can take back from the run before it (`limit` bytes long: it keeps one), so that it starts
 * at a multiple of `blockSize`; 0 when the bytes do not agree that far.
 */
function alignedStart(input: Buffer, output: Buffer, o: number, from: number, limit: number, blockSize: number): number {
  for (let back = 0; back < limit && back <= from; back++) {
    if (back > 0 && output[o - back] !== input[from - back]) return 0;
    if ((from - back) % blockSize === 0) return back;
  }
  return 0;
}

function analyse(input: Buffer, output: Buffer, blockSize: number): Pick<ConsumerResult, 'segments' | 'garbageBytes' | 'backwardsSegments' | 'skippedBytes' | 'sawLast' | 'exact' | 'sha256' | 'bytes'> {
  const segments = segmentsOf(input, output, blockSize);
  let garbageBytes = 0;
  let backwardsSegments = 0;
  let skippedBytes = 0;
  let end = 0;
  for (const s of segments) {
    if (s.from < 0) { garbageBytes += s.length; continue; }
    if (s.from < end) backwardsSegments += 1;
    else skippedBytes += s.from - end;
    end = Math.max(end, s.from + s.length);
  }
  skippedBytes += input.length - end;
  const lastBlock = input.length - (input.length % blockSize || blockSize);
  const sawLast = segments.some((s) => s.from >= 0 && s.from <= lastBlock && s.from + s.length === input.length);
  return {
    segments,
    garbageBytes,
    backwardsSegments,
    skippedBytes,
    sawLast,
    exact: output.equals(input),
    sha256: createHash('sha256').update(output).digest('hex'),
    bytes: output.length,
  };
}

/**
 * Several back-pressure consumers: whether every input byte went out
 * exactly once across their outputs (each in order), and if not, which
 * blocks (by their first byte) went out twice or more, and which never.
 */
function union(input: Buffer, results: ConsumerResult[], blockSize: number): Pick<ScenarioResult, 'unionExact' | 'unionFaults'> {
  const covered = new Uint8Array(input.length);
  for (const r of results) for (const s of r.segments) if (s.from >= 0) for (let i = s.from; i < s.from + s.length; i++) covered[i]! += 1;
  const clean = results.every((r) => r.garbageBytes === 0 && r.backwardsSegments === 0);
  if (clean && covered.every((c) => c === 1)) return { unionExact: true };
  const repeated: number[] = [];
  const missing: number[] = [];
  for (let b = 0; b * blockSize < input.length; b++) {
    const c = covered[b * blockSize]!;
    if (c > 1) repeated.push(b);
    if (c === 0) missing.push(b);
  }
  return { unionExact: false, unionFaults: { repeated, missing } };
}

let counter = 0;

export async function runScenario(s: Scenario): Promise<ScenarioResult> {
  const m = mounts();
  if (!m) throw new Error('FILEBUS_MOUNT_A and FILEBUS_MOUNT_B must be set (test/distributed/setup.sh)');
  const blockSize = s.blockSize ?? 65536;
  const t0 = Date.now();
  const dirName = `bus-${process.pid}-${Date.now()}-${counter++}`;
  fs.mkdirSync(path.join(m.A, dirName));
  const busOn = (h: Host) => path.join(m[h], dirName, 'bus');
  const modeFlags = s.mode === 'lossy' ? [] : [`--${s.mode}`];
  const input = randomBytes(s.size);
  const inputFile = path.join(fs.mkdtempSync('/tmp/filebus-dist-'), 'input');
  fs.writeFileSync(inputFile, input);
  const timeoutMs = s.timeoutMs ?? 60_000;

  const busFlags = s.busFlags ?? [];
  const consumers = s.consumers.map((c) => ({
    spec: c,
    run: start(['--filename', busOn(c.host), ...modeFlags, '--block-size', String(blockSize), ...busFlags, ...(c.flags ?? []), 'consumer'], 'pipe'),
  }));
  for (const c of consumers) c.run.proc.stdin!.end();
  // Let consumers set up (multicast consumers register their cursors) before input flows.
  await sleep(1000);

  const producerHost = s.producerHost ?? 'A';
  const producerArgs = ['--filename', busOn(producerHost), ...modeFlags, '--block-size', String(blockSize), ...busFlags, ...(s.producerFlags ?? []), 'producer'];
  let producer: Running;
  if (s.throttleMs !== undefined) {
    // Paced input starts once the producer has opened the bus (its -v line):
    // blocks queued while it starts would be published back to back.
    producer = start(['-v', ...producerArgs], 'pipe');
    const ready = Date.now() + 15_000;
    while (!producer.proc.stderr().includes('bus on') && producer.proc.child.exitCode === null && Date.now() < ready) await sleep(10);
    for (let off = 0; off < input.length; off += blockSize) {
      if (producer.proc.child.exitCode !== null) break;
      producer.proc.stdin!.write(input.subarray(off, off + blockSize));
      await sleep(s.throttleMs);
    }
    producer.proc.stdin!.end();
  } else {
    producer = start(producerArgs, { file: inputFile });
  }

  let hang = false;
  if (!(await finishedWithin([producer], timeoutMs))) {
    hang = true;
    kill(producer);
  }
  if (s.mode === 'lossy') {
    // Lossy consumers never end: give them time to catch the last chunk, then stop them.
    await sleep(3000);
    for (const c of consumers) kill(c.run);
  } else if (s.mode === 'back-pressure') {
    // Exactly one consumer takes the end marker and exits; the others wait for a next stream.
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !consumers.some((c) => c.run.proc.child.exitCode !== null)) await sleep(50);
    if (!consumers.some((c) => c.run.proc.child.exitCode !== null)) hang = true;
    await sleep(500);
    for (const c of consumers) kill(c.run);
    if (consumers.every((c) => c.run.killed)) hang = true;
  } else {
    if (!(await finishedWithin(consumers.map((c) => c.run), timeoutMs))) hang = true;
    for (const c of consumers) kill(c.run);
  }
  const pexit = await producer.proc.done;
  const results: ConsumerResult[] = [];
  for (const c of consumers) {
    const exit = await c.run.proc.done;
    const output = c.run.proc.stdout();
    results.push({
      host: c.spec.host,
      flags: c.spec.flags ?? [],
      code: exit.code,
      signal: exit.signal,
      killed: c.run.killed,
      stderr: c.run.proc.stderr().slice(0, 2000),
      ...analyse(input, output, blockSize),
    });
  }
  fs.rmSync(path.dirname(inputFile), { recursive: true, force: true });
  fs.rmSync(path.join(m.A, dirName), { recursive: true, force: true });
  return {
    scenario: s,
    producer: { code: pexit.code, signal: pexit.signal, stderr: producer.proc.stderr().slice(0, 2000), killed: producer.killed },
    consumers: results,
    hang,
    ...(s.mode === 'back-pressure' && s.consumers.length > 1 && union(input, results, blockSize)),
    seconds: (Date.now() - t0) / 1000,
  };
}

/** One line per consumer, for reports. */
export function describe(r: ScenarioResult): string {
  const s = r.scenario;
  const head = `${s.mode} producer@${s.producerHost ?? 'A'}${s.producerFlags?.length ? ` [${s.producerFlags.join(' ')}]` : ''}` +
    `${s.throttleMs !== undefined ? ` throttle=${s.throttleMs}ms` : ''} ${s.size}B in ${r.seconds.toFixed(1)}s` +
    ` producer=${r.producer.killed ? 'KILLED(hang)' : r.producer.code ?? r.producer.signal}${r.hang ? ' HANG' : ''}` +
    `${r.unionExact !== undefined ? ` unionExact=${r.unionExact}` : ''}` +
    `${r.unionFaults ? ` repeatedBlocks=[${r.unionFaults.repeated.join(',')}] missingBlocks=[${r.unionFaults.missing.join(',')}]` : ''}`;
  const lines = r.consumers.map((c) => {
    const blocks = (n: number) => (n / (s.blockSize ?? 65536)).toFixed(1);
    return `  consumer@${c.host} [${c.flags.join(' ') || 'defaults'}]: exit=${c.killed ? 'killed' : c.code ?? c.signal} bytes=${c.bytes} exact=${c.exact}` +
      ` segments=${c.segments.length} skipped=${blocks(c.skippedBytes)}blk backwards=${c.backwardsSegments} garbage=${c.garbageBytes}B sawLast=${c.sawLast}` +
      `${r.unionFaults ? ` blocks=${c.segments.map((g) => g.from < 0 ? `?x${g.length}` : `${g.from / (s.blockSize ?? 65536)}-${(g.from + g.length) / (s.blockSize ?? 65536) - 1}`).join(',')}` : ''}` +
      `${c.stderr.trim() ? ` stderr=${JSON.stringify(c.stderr.trim().split('\n').slice(-2).join(' | '))}` : ''}`;
  });
  const perr = r.producer.stderr.trim() ? [`  producer stderr: ${JSON.stringify(r.producer.stderr.trim().split('\n').slice(-2).join(' | '))}`] : [];
  return [head, ...lines, ...perr].join('\n');
}

/**
 * Which configuration run.sh brought up: "nocache" when B is mounted with
 * entry-timeout=0 (setup.sh's default, with direct I/O and the volume's
 * caches off), else "caching" (glusterfs's defaults).
 */
export function mountConfig(): 'nocache' | 'caching' {
  return /(^|,)entry-timeout=0(,|$)/.test(process.env.FILEBUS_GLUSTER_ACTIVE_MOUNT_OPTIONS_B ?? '') ? 'nocache' : 'caching';
}
