/**
 * CLI fuzz: a few hundred random argument vectors, mixing real flags with
 * good and bad values, wrong values, random strings (unicode, long, empty),
 * `--`, repeated flags, and commands in wrong places or missing. Each runs in
 * a fresh empty directory with stdin closed. Whatever the vector:
 * - never a stack trace;
 * - a rejection exits 2 with exactly one `filebus: ...` line and no output;
 * - a run that fails while running exits 1 with exactly one line;
 * - anything accepted ends by itself (exit 0) within the timeout, except a
 *   consumer, which waits for data: one still running after a while is
 *   stopped and counted as accepted.
 * RELIABILITY_FUZZ sets the count; RELIABILITY_SEED replays a run.
 */
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { startFilebus, killAll } from '../helpers/procs.js';
import { writeResults, rng, seedFor } from '../helpers/reliability.js';

const COUNT = Number(process.env.RELIABILITY_FUZZ ?? 250);
const PARALLEL = 4;
/** A consumer still running after this long is accepted and stopped. */
const CONSUMER_MS = 2500;
/** Anything else must have ended by then. */
const TIMEOUT_MS = 20_000;

const seed = seedFor('cli-fuzz');
const random = rng(seed);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

const UNICODE = ['é', 'ß', '中文', '😀', '\u202e', 'e\u0301', '\u00a0', '\u200b', 'Ω', 'ﬁ', '１２', '٣', '\ufeff', '\u{10ffff}', '\t', ' ', '\n'];
/** A random string; never a path out of the run's directory (no '/', no leading '.'). */
function randomString(): string {
  const n = pick([0, 1, 2, 5, 12, 40, 300, 5000]);
  let s = '';
  while (s.length < n) {
    const r = random();
    if (r < 0.5) s += String.fromCharCode(97 + Math.floor(random() * 26));
    else if (r < 0.7) s += String(Math.floor(random() * 10));
    else if (r < 0.8) s += pick(['-', '=', '_', '+', ',', ':', '*', '?', '$', '!', '\\', '"', "'"]);
    else s += pick(UNICODE);
  }
  return s.replace(/\//g, '').replace(/^\.+/, '').slice(0, n);
}

const NUMBERS = ['0', '1', '2', '64', '4096', '65536', '-1', '-0', '1.5', '1e3', '1e309', 'NaN', 'Infinity', '0x10', ' 5 ', '5 ', '１２', '99999999999999999999', '1073741824', '1073741825', '', 'abc', '0o17', '+3', '.5', '5.', '1_000'];
const VALUES: Record<string, () => string> = {
  '--filename': () => pick(['bus', 'b', 'sub/bus', 'deep/er/bus', 'üñí', 'with space', 'x'.repeat(300), '.', './bus', 'bus.lock', 'bus.segments', '-bus', '', ' ', randomString()]).replace(/^\.\.+/, ''),
  '--block-size': () => pick(NUMBERS),
  '--sleep-interval': () => pick([...NUMBERS, '0.001', '0.01', '1e-9', '1e9']),
  '--window': () => pick(['1', '256', '0', '-1', '64MiB', '512k', '1G', '1.5', 'abc', '10 MiB', '9999999999999999999999', '']),
  '--retain': () => pick(['window', 'all', 'none', '', 'ALL', randomString()]),
  '--name': () => pick(['alice', 'a.b-c_d', '-x', '.x', '~x', '', 'x'.repeat(101), 'con sumer', 'producer', 'é', randomString()]),
  '--from': () => pick(['earliest', 'latest', '1', '0', '-1', '2', '999', '1.5', 'EARLIEST', '', randomString()]),
  '--file-mode': () => pick(['0600', '600', '644', '0777', '0000', '0800', '1777', '0o600', 'rw', '', '-0600', ' 0600']),
  '--mode': () => pick(['0600', '640', '999', 'abc', '']),
};
const SWITCHES = ['--back-pressure', '--lossless', '--multicast', '--no-file-monitoring', '--file-monitoring', '-v', '-vv', '-vvv', '--verbose',
  '--blocking-read', '--no-back-pressure', '--no-lossless', '--no-multicast', '--no-blocking-read', '--help', '-h', '--version'];
const COMMANDS = ['producer', 'consumer', 'remove-consumer'];
const ODD = ['--', '-', '---', '--=', '-=', '=', '', ' ', '--bogus', '-x', '-V', '-hv', '--no-', '--no-filename', '--filename.x', '--__proto__',
  '--constructor', '--toString', '-1', '-0.5', '--block-size=4096', '--filename=bus', '--filename=', '--window=8', '--retain=all', '--from=1',
  '--name=alice', '--mode=0600', 'PRODUCER', 'Consumer', 'produce', 'remove_consumer', 'help', '--lossless=true', '--multicast=false', '-v=3'];

function vector(): string[] {
  const out: string[] = [];
  // Usually a plausible command line, mutated.
  if (random() < 0.8) out.push('--filename', VALUES['--filename']!());
  const pieces = Math.floor(random() * 7);
  for (let i = 0; i < pieces; i++) {
    const r = random();
    if (r < 0.3) {
      const flag = pick(Object.keys(VALUES));
      if (random() < 0.1) out.push(flag); // no value
      else if (random() < 0.2) out.push(`${flag}=${VALUES[flag]!()}`);
      else out.push(flag, VALUES[flag]!());
    } else if (r < 0.55) out.push(pick(SWITCHES));
    else if (r < 0.7) out.push(pick(COMMANDS));
    else if (r < 0.85) out.push(pick(ODD));
    else out.push(randomString());
  }
  if (random() < 0.7) {
    // A command, maybe in a wrong place.
    const at = random() < 0.7 ? out.length : Math.floor(random() * (out.length + 1));
    out.splice(at, 0, pick(COMMANDS));
  }
  if (random() < 0.15 && out.length > 1) out.push(...out.slice(0, 2)); // repeats
  return out.map((a) => a.replace(/\0/g, ''));
}

interface Verdict {
  argv: string[];
  kind: 'rejected' | 'failed' | 'accepted' | 'accepted-consumer-stopped' | 'bad';
  code: number | null;
  why?: string;
  stderr: string;
}

async function runOne(argv: string[]): Promise<Verdict> {
  const cwd = tempDir('filebus-reliability-fuzz-');
  const out: Buffer[] = [];
  try {
    const p = startFilebus(argv, { cwd, stdout: (d) => out.push(d) });
    const start = Date.now();
    let stopped = false;
    const isConsumer = argv.includes('consumer');
    // A consumer still running after CONSUMER_MS is taken to be waiting for
    // data, unless it has begun to fail: on a loaded machine a rejection's
    // exit can come later than its error line.
    const failing = (): boolean => /^filebus: /m.test(p.stderr());
    while (p.running() && Date.now() - start < (isConsumer && !failing() ? CONSUMER_MS : TIMEOUT_MS)) await new Promise((r) => setTimeout(r, 20));
    if (p.running()) {
      stopped = true;
      p.child.kill('SIGKILL');
    }
    const exit = await p.done;
    const stderr = p.stderr();
    const stdout = Buffer.concat(out);
    const bad = (why: string): Verdict => ({ argv, kind: 'bad', code: exit.code, why, stderr });
    if (/^\s+at /m.test(stderr) || /\n\s+at .*:\d+:\d+\)?$/m.test(stderr)) return bad('stack trace');
    if (stopped) {
      if (!isConsumer) return bad(`still running after ${TIMEOUT_MS} ms`);
      if (stderr !== '' && !/^(filebus consumer: [^\n]*\n)*$/.test(stderr)) return bad('a waiting consumer wrote to stderr');
      return { argv, kind: 'accepted-consumer-stopped', code: null, stderr };
    }
    if (exit.signal !== null) return bad(`died of ${exit.signal}`);
    if (exit.code === 0) return { argv, kind: 'accepted', code: 0, stderr };
    // -v lines ("filebus producer: ...") may come first; the error is exactly one line, last.
    const verbose = argv.some((a) => a === '-v' || a === '--verbose' || /^-v+$/.test(a));
    const errorPart = verbose ? stderr.replace(/^(filebus (producer|consumer): [^\n]*\n)*/, '') : stderr;
    if (!/^filebus: [^\n]+\n$/.test(errorPart)) return bad('not exactly one filebus: line on stderr');
    if (stdout.length > 0) return bad('output on failure');
    if (exit.code === 2) return { argv, kind: 'rejected', code: 2, stderr: errorPart };
    if (exit.code === 1) return { argv, kind: 'failed', code: 1, stderr: errorPart };
    return bad(`exit ${exit.code}`);
  } finally {
    fs.rmSync(cwd, { recursive: true, force: true });
  }
}

afterAll(async () => {
  await killAll();
});

describe('CLI fuzz', () => {
  it(`${COUNT} random argument vectors: no stack trace, one-line rejections with exit 2, nothing hangs (seed ${seed})`, async () => {
    const vectors = Array.from({ length: COUNT }, vector);
    // Some fixed vectors known to be tricky for a yargs-based parser.
    vectors.push(['--filename', 'bus', '--', 'producer'], ['--', '--filename', 'bus', 'producer'], ['producer', '--filename'], ['--filename', 'bus', 'producer', 'consumer'],
      ['--filename', 'bus', '--block-size', 'producer'], ['--filename', 'bus', 'remove-consumer'], ['--filename', 'bus', 'remove-consumer', '--name', 'x'],
      ['--filename', 'bus', '--multicast', '--name', '', 'consumer'], ['--filename', 'bus', '--filename', 'bus', 'producer'], []);
    const verdicts: Verdict[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: PARALLEL }, async () => {
      while (next < vectors.length) {
        const argv = vectors[next++]!;
        verdicts.push(await runOne(argv));
      }
    }));
    const bad = verdicts.filter((v) => v.kind === 'bad');
    const counts: Record<string, number> = {};
    for (const v of verdicts) counts[v.kind] = (counts[v.kind] ?? 0) + 1;
    // What a runtime failure (exit 1) said: each must be about the bus, not the command line.
    const failures = [...new Set(verdicts.filter((v) => v.kind === 'failed').map((v) => v.stderr.trim().replace(/\/tmp\/filebus-reliability-fuzz-[^/]+/g, '<dir>')))];
    writeResults('cli-fuzz', {
      seed,
      vectors: verdicts.length,
      ...counts,
      stackTraces: bad.filter((v) => v.why === 'stack trace').length,
      hangs: bad.filter((v) => v.why?.startsWith('still running')).length,
      exit1Messages: failures.slice(0, 20),
      badExamples: bad.slice(0, 10).map((v) => ({ argv: v.argv.map((a) => (a.length > 60 ? `${a.slice(0, 60)}...(${a.length})` : a)), why: v.why, stderr: v.stderr.slice(0, 300) })),
    });
    expect(bad.map((v) => ({ argv: v.argv.map((a) => (a.length > 60 ? `${a.slice(0, 60)}...(${a.length})` : a)), why: v.why, stderr: v.stderr.slice(0, 500) }))).toEqual([]);
    // A bad command line is a usage error: exit 2, never 1.
    for (const message of failures) expect(message, 'an exit-1 failure must be about the bus').toMatch(/^filebus: (cannot |no consumer named |.*(not a directory|is a directory|permission denied|ENAMETOOLONG|too long))/);
  }, 900_000);
});
