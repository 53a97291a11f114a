/**
 * Where the CLI is, test data for it, and small helpers of the CLI tests.
 * Processes are started with procs.ts; bus directories come from bus-dir.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { flock } from 'fs-ext';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin/filebus');

/** A fresh directory under the OS temp dir; the caller removes it (useBusDir in bus-dir.ts does). */
export function tempDir(prefix = 'filebus-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Writes `data` to a file in `dir` and returns its path (an input to give a producer as stdin). */
export function writeInput(dir: string, name: string, data: Buffer): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, data);
  return file;
}

/** The common arguments of a multicast command on bus `file`. */
export function mc(file: string, ...args: string[]): string[] {
  return ['--filename', file, '--multicast', ...args];
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function randomData(size: number): Buffer {
  return randomBytes(size);
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
