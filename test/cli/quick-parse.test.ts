/**
 * The quick path (src/cli/quick-parse.ts) reads plain command lines without
 * loading yargs. Whatever it takes, it must read exactly as yargs does: for
 * thousands of random command lines, parseArgs with the quick path and
 * parseArgs with yargs alone give the same arguments or the same error.
 * QUICK_PARSE_SEED replays another set.
 */
import { describe, expect, it } from 'vitest';
import { parseArgs, type CliArgs } from '../../src/cli/parse-args.js';
import { quickParse } from '../../src/cli/quick-parse.js';

const COUNT = 4000;
const seed = Number(process.env.QUICK_PARSE_SEED ?? 20261124);

function rng(start: number): () => number {
  let a = start >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = rng(seed);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

/** Values yargs might read otherwise than as typed: numbers, quotes, dashes, '=', spaces, unicode, command words. */
const VALUES = ['bus', '/tmp/x', 'with space', 'a=b', '=x', 'x=', '0', '1', '-1', '1.5', '1e3', '0x10', '0o17', ' 5 ', '5 ', '１２', 'NaN',
  'Infinity', 'true', 'false', 'null', 'undefined', '__proto__', 'constructor', 'producer', 'consumer', 'status', "'q'", '"q"', "a'", 'a"',
  '"', "'", 'é', '😀', '\t', '\n', 'a\nb', ' ', '', '-', '--', '-x', '--x', 'earliest', 'latest', '64MiB', '256', '0600', '644', 'poll',
  'events', 'auto', 'chokidar', 'flock', 'mkdir', 'window', 'all', '1048576', '0.001', 'x'.repeat(300), '.', '..', 'a.b', 'a..b'];
const VALUE_OPTIONS = ['--filename', '--block-size', '--sleep-interval', '--window', '--watch', '--lock', '--file-mode', '--progress-interval',
  '--name', '--from', '--retain', '--mode'];
const FLAGS = ['--back-pressure', '--lossless', '--multicast', '--json', '--progress', '--blocking-read', '--no-multicast', '--no-file-monitoring',
  '--file-monitoring', '--back-pressure=true', '--multicast=false', '-v', '-vv', '-vvv', '--verbose', '-vh', '-v=2'];
const COMMANDS = ['producer', 'consumer', 'status', 'remove-consumer'];

function vector(): string[] {
  const out: string[] = [];
  const pieces = Math.floor(random() * 6);
  for (let i = 0; i < pieces; i++) {
    const r = random();
    if (r < 0.55) {
      const option = pick(VALUE_OPTIONS);
      if (random() < 0.25) out.push(`${option}=${pick(VALUES)}`);
      else if (random() < 0.05) out.push(option);
      else out.push(option, pick(VALUES));
    } else if (r < 0.9) out.push(pick(FLAGS));
    else out.push(pick([...COMMANDS, ...VALUES]));
  }
  if (random() < 0.9) out.splice(Math.floor(random() * (out.length + 1)), 0, pick(COMMANDS));
  if (random() < 0.9) out.splice(Math.floor(random() * (out.length + 1)), 0, '--filename', pick(['bus', '/tmp/x', 'a b', 'producer']));
  return out;
}

const ENVIRONMENTS: NodeJS.ProcessEnv[] = [
  {},
  { FILEBUS_BACK_PRESSURE: '1' },
  { FILEBUS_MULTICAST: 'yes', FILEBUS_WINDOW: '8' },
  { FILEBUS_FILENAME: 'env-bus', FILEBUS_BLOCK_SIZE: '4096', FILEBUS_PROGRESS: 'on' },
];

type Outcome = { args: CliArgs } | { error: string };

async function outcome(argv: string[], env: NodeJS.ProcessEnv, yargsOnly: boolean): Promise<Outcome> {
  try {
    return { args: await parseArgs(argv, '0.0.0', { env, yargsOnly }) };
  } catch (error) {
    return { error: `${(error as Error).name}: ${(error as Error).message}` };
  }
}

describe('the quick path reads a command line as yargs does', () => {
  it(`${COUNT} random command lines (seed ${seed}): same arguments or the same error either way`, async () => {
    let taken = 0;
    const differences: { argv: string[]; env: NodeJS.ProcessEnv; quick: Outcome; yargs: Outcome }[] = [];
    for (let i = 0; i < COUNT; i++) {
      const argv = vector();
      if (quickParse(argv) === undefined) continue;
      taken += 1;
      const env = pick(ENVIRONMENTS);
      const quick = await outcome(argv, env, false);
      const yargs = await outcome(argv, env, true);
      if (JSON.stringify(quick) !== JSON.stringify(yargs)) differences.push({ argv, env, quick, yargs });
    }
    expect(differences.slice(0, 5).map((d) => JSON.stringify(d))).toEqual([]);
    // Not vacuous: a good share of the lines went the quick way.
    expect(taken).toBeGreaterThan(COUNT / 10);
  }, 120_000);

  it('the command lines filebus is usually started with are taken', () => {
    for (const argv of [
      ['--filename', '/tmp/x', 'producer'],
      ['--filename', '/tmp/x', 'consumer'],
      ['--filename=/tmp/x', '--back-pressure', '--block-size', '1048576', '-v', 'producer'],
      ['consumer', '--filename', '/tmp/x', '--multicast', '--name', 'alice', '--from', 'earliest'],
      ['--filename', '/tmp/x', '--json', 'status'],
    ]) {
      expect(quickParse(argv), argv.join(' ')).toBeDefined();
    }
  });

  it('help, version, completion and anything unusual go to yargs', () => {
    for (const argv of [
      ['--help'], ['producer', '--help'], ['-h'], ['--version'], ['completion'], ['--get-yargs-completions', 'pro'],
      ['--filename', 'x', '--', 'producer'], ['--filename', 'x', '--no-multicast', 'consumer'], ['--filename', 'x', '--mode', '0600', 'producer'],
      ['--filename', 'x', 'remove-consumer', 'alice'], ['--filename', 'x', '--filename', 'y', 'producer'], ['--filename', '-x', 'producer'],
      ['--filename', 'x', '--name', 'alice', 'producer'], ['--filename', 'x', '--multicast=true', 'consumer'], ['--filename', 'x'],
    ]) {
      expect(quickParse(argv), argv.join(' ')).toBeUndefined();
    }
  });
});
