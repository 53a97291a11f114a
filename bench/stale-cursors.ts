/**
 * Measures what dead named multicast cursors cost a producer whose window is
 * full (issue 13, point 10). Not a test: it prints figures.
 *
 *   npx tsx bench/stale-cursors.ts [--dead 1000] [--chunks 10000] [--window 256] [--bin bin/filebus] [--timeout 300]
 *
 * Writes DEAD cursor files in the documented format (FILE.consumers/NAME.cursor,
 * position 1, nobody holding them: dead named consumers, which hold retention
 * until removed), starts one live consumer whose output is thrown away, then times a
 * producer publishing CHUNKS chunks of 4 KiB with --window WINDOW. The
 * processes' stderr is printed at the end.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cursorRecord } from '../test/helpers/bus-layout.js';
import { killAll, startFilebus } from '../test/helpers/procs.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

const dead = Number(arg('dead', '1000'));
const chunks = Number(arg('chunks', '10000'));
const window = arg('window', '256');
const bin = path.resolve(arg('bin', 'bin/filebus'));
const timeoutS = Number(arg('timeout', '300'));
const BLOCK = 4096;

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'filebus-stale-'));
  const bus = path.join(dir, 'bus');
  try {
    fs.mkdirSync(`${bus}.segments`);
    fs.mkdirSync(`${bus}.consumers`);
    for (let i = 0; i < dead; i++) fs.writeFileSync(path.join(`${bus}.consumers`, `dead${i}.cursor`), cursorRecord(1));
    // Its output is read and thrown away (filebus refuses a /dev/null opened read-write as stdout).
    const consumer = startFilebus(['--filename', bus, '--multicast', 'consumer'], { bin, stdout: () => {} });
    const consumerCursors = dead + 1;
    while (fs.readdirSync(`${bus}.consumers`).length < consumerCursors) {
      if (!consumer.running()) throw new Error(`the consumer exited: ${consumer.stderr()}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const started = process.hrtime.bigint();
    const producer = startFilebus(['--filename', bus, '--multicast', '--window', window, '--block-size', String(BLOCK), 'producer'],
      { bin, stdin: 'pipe', stdout: 'ignore' });
    const input = producer.stdin!;
    const timer = setTimeout(() => producer.killGroup(), timeoutS * 1000);
    const block = Buffer.alloc(BLOCK, 7);
    // One write per chunk, each waited for, so chunks are cut at 4 KiB.
    const feed = (async () => {
      for (let i = 0; i < chunks; i++) {
        if (!input.write(block)) await new Promise((r) => input.once('drain', r));
      }
      input.end();
    })();
    feed.catch(() => {});
    const { code } = await producer.done;
    clearTimeout(timer);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const published = fs.readdirSync(`${bus}.segments`).length;
    process.stderr.write(producer.stderr() + consumer.stderr());
    await killAll();
    console.log(JSON.stringify({ bin, dead, chunks, window: Number(window), exit: code, seconds: Number(seconds.toFixed(2)), segmentsOnDisk: published }));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
