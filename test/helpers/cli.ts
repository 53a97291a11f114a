import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin/filebus');

/** A fresh directory under the OS temp dir, removed by the returned cleanup. */
export function tempDir(prefix = 'filebus-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface Running {
  child: ChildProcess;
  /** Bytes written to stdout so far. */
  stdout(): Buffer;
  stderr(): string;
  done: Promise<Finished>;
}

/** Starts `filebus ...args`; stdin is a pipe unless `input` is a path to read from. */
export function startCli(args: readonly string[], options: { stdinFile?: string; env?: NodeJS.ProcessEnv } = {}): Running {
  const stdin = options.stdinFile !== undefined ? fs.openSync(options.stdinFile, 'r') : 'pipe';
  const child = spawn(process.execPath, [BIN, ...args], {
    stdio: [stdin, 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  if (typeof stdin === 'number') fs.closeSync(stdin);
  const out: Buffer[] = [];
  let err = '';
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const done = new Promise<Finished>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout: Buffer.concat(out), stderr: err }));
  });
  return { child, stdout: () => Buffer.concat(out), stderr: () => err, done };
}

/** Runs `filebus ...args` to completion with `input` on stdin. */
export async function runCli(args: readonly string[], input?: Buffer | string, timeoutMs = 30_000): Promise<Finished> {
  const run = startCli(args);
  if (input !== undefined) run.child.stdin!.end(input);
  else run.child.stdin!.end();
  const timer = setTimeout(() => run.child.kill('SIGKILL'), timeoutMs);
  try {
    return await run.done;
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` until it returns true, or throws after `timeoutMs`. */
export async function waitUntil(check: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function randomData(size: number): Buffer {
  return randomBytes(size);
}

/** Resolves like `promise`, or rejects naming `what` after `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `sh -c script sh ...args` with NODE (this Node) and BIN (bin/filebus)
 * in its environment, for tests that need a real shell pipeline or
 * redirection; resolves with its exit code and stderr once it ends.
 */
export function runShell(script: string, args: readonly string[] = [], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', script, 'sh', ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, NODE: process.execPath, BIN, ...env },
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('close', (code) => resolve({ code, stderr }));
  });
}
