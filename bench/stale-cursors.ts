/**
 * Measures what dead named multicast cursors cost a producer whose window is
 * full (issue 13, point 10). Not a test: it prints figures.
 *
 *   npx tsx bench/stale-cursors.ts [--dead 1000] [--chunks 10000] [--window 256] [--bin bin/filebus] [--timeout 300]
 *
 * Writes DEAD cursor files in the documented format (FILE.consumers/NAME.cursor,
 * position 1, nobody holding them: dead named consumers, which hold retention
 * until removed), starts one live consumer writing to /dev/null, then times a
 * producer publishing CHUNKS chunks of 4 KiB with --window WINDOW.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';

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

function cursorRecord(position: number): string {
  const digits = String(position).padStart(20, '0');
  return `${digits} ${(crc32(digits) >>> 0).toString(16).padStart(8, '0')}\n`;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'filebus-stale-'));
  const bus = path.join(dir, 'bus');
  try {
    fs.mkdirSync(`${bus}.segments`);
    fs.mkdirSync(`${bus}.consumers`);
    for (let i = 0; i < dead; i++) fs.writeFileSync(path.join(`${bus}.consumers`, `dead${i}.cursor`), cursorRecord(1));
    const consumer = spawn(process.execPath, [bin, '--filename', bus, '--multicast', 'consumer'], { stdio: ['ignore', 'ignore', 'inherit'] });
    const consumerCursors = dead + 1;
    while (fs.readdirSync(`${bus}.consumers`).length < consumerCursors) await new Promise((r) => setTimeout(r, 10));
    const started = process.hrtime.bigint();
    const producer = spawn(process.execPath, [bin, '--filename', bus, '--multicast', '--window', window, '--block-size', String(BLOCK), 'producer'],
      { stdio: ['pipe', 'ignore', 'inherit'] });
    producer.stdin.on('error', () => {}); // EPIPE once killed at the timeout
    const timer = setTimeout(() => producer.kill('SIGKILL'), timeoutS * 1000);
    const block = Buffer.alloc(BLOCK, 7);
    // One write per chunk, each waited for, so chunks are cut at 4 KiB.
    const feed = (async () => {
      for (let i = 0; i < chunks; i++) {
        if (!producer.stdin.write(block)) await new Promise((r) => producer.stdin.once('drain', r));
      }
      producer.stdin.end();
    })();
    feed.catch(() => {});
    const code = await new Promise<number | null>((resolve) => producer.on('close', (c) => resolve(c)));
    clearTimeout(timer);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const published = fs.readdirSync(`${bus}.segments`).length;
    consumer.kill('SIGKILL');
    console.log(JSON.stringify({ bin, dead, chunks, window: Number(window), exit: code, seconds: Number(seconds.toFixed(2)), segmentsOnDisk: published }));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
