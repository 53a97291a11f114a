/**
 * The package as a user gets it: `npm pack` (a copy of) the repository, install the
 * tarball into a throwaway project, and use it from there with real `node`,
 * the repository's own `tsc`, and `npx filebus`.
 *
 * Installing runs from npm's local cache (`--offline`); a machine whose cache
 * lacks a dependency falls back to `--prefer-offline`.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { targets } from '../helpers/markdown.js';
import { startProcess } from '../helpers/procs.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  bin: Record<string, string>;
};
const TSC = path.join(ROOT, 'node_modules', '.bin', 'tsc');
const SETUP_TIMEOUT = 180_000;

/**
 * The environment for child npm and node processes: without the npm_*
 * variables `npm test` sets, which would otherwise point npm back at the
 * repository (its prefix, its lifecycle event) instead of the consumer project.
 */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Set to undefined, not deleted: a variable set to undefined is left out by spawn, and by the
  // harness (startProcess), which adds `env` to this process's environment.
  for (const key of Object.keys(env)) {
    if (/^npm_/i.test(key) || key === 'INIT_CWD' || key === 'NODE_OPTIONS') env[key] = undefined;
  }
  return env;
}

function run(command: string, args: readonly string[], cwd: string, options: { input?: string; timeout?: number } = {}): SpawnSyncReturns<string> {
  return spawnSync(command, [...args], {
    cwd,
    env: childEnv(),
    encoding: 'utf8',
    input: options.input ?? '',
    timeout: options.timeout ?? 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
}

function describeRun(what: string, result: SpawnSyncReturns<string>): string {
  return `${what} exited ${result.status} (signal ${result.signal}, error ${result.error?.message ?? 'none'})\n` +
    `--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

/** Like run(), without blocking: for commands that must run side by side. Killed after `timeout` ms. */
async function runAsync(command: string, args: readonly string[], cwd: string, input: string, timeout = 30_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const proc = startProcess(command, args, { cwd, env: childEnv(), stdin: 'pipe' });
  proc.stdin!.end(input);
  const timer = setTimeout(() => proc.killGroup(), timeout);
  try {
    const ended = await proc.ended;
    return { status: ended.code, stdout: ended.stdout.toString('utf8'), stderr: ended.stderr };
  } finally {
    clearTimeout(timer);
  }
}

let work: string;
let tarball: string;
let tarballFiles: string[];
let project: string;
let installLog: string;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'filebus-pack-'));

  // Pack a copy of the work tree, so that `prepare` (the build, run by npm
  // pack as by npm publish) builds from source into the copy's own dist/ and
  // never rewrites the repository's dist/ under tests running beside this one.
  const source = path.join(work, 'source');
  const skipped = new Set(['node_modules', 'dist', '.git', 'coverage']);
  fs.cpSync(ROOT, source, {
    recursive: true,
    filter: (from) => path.dirname(from) !== ROOT || !skipped.has(path.basename(from)),
  });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(source, 'node_modules'), 'dir');
  const packed = run('npm', ['pack', '--pack-destination', work], source, { timeout: SETUP_TIMEOUT });
  if (packed.status !== 0) throw new Error(describeRun('npm pack', packed));
  const tgz = fs.readdirSync(work).filter((name) => name.endsWith('.tgz'));
  if (tgz.length !== 1) throw new Error(`npm pack left ${JSON.stringify(tgz)} in ${work}\n${describeRun('npm pack', packed)}`);
  tarball = path.join(work, tgz[0]!);
  const listed = run('tar', ['-tzf', tarball], work);
  if (listed.status !== 0) throw new Error(describeRun('tar -tzf', listed));
  tarballFiles = listed.stdout.split('\n').filter(Boolean).map((name) => name.replace(/^package\//, ''));

  project = path.join(work, 'consumer-project');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({
    name: 'filebus-pack-consumer',
    version: '1.0.0',
    private: true,
    type: 'module',
  }, null, 2));
  const installArgs = ['install', '--no-audit', '--no-fund', '--no-package-lock', tarball];
  let installed = run('npm', [...installArgs, '--offline'], project, { timeout: SETUP_TIMEOUT });
  installLog = describeRun('npm install --offline', installed);
  if (installed.status !== 0) {
    // Not every dependency is in the local cache: use the cache where it can.
    installed = run('npm', [...installArgs, '--prefer-offline'], project, { timeout: SETUP_TIMEOUT });
    installLog += `\n${describeRun('npm install --prefer-offline', installed)}`;
  }
  if (installed.status !== 0) throw new Error(installLog);
}, SETUP_TIMEOUT);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('names the tarball after the package and version', () => {
    expect(path.basename(tarball)).toBe(`${PKG.name}-${PKG.version}.tgz`);
  });

  it('ships the entry points named in package.json and nothing from the work tree', () => {
    for (const needed of ['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', ...Object.values(PKG.bin)]) {
      expect(tarballFiles, `tarball lacks ${needed}`).toContain(needed);
    }
    const stray = tarballFiles.filter((name) => /^(src|test|bench|node_modules|\.ci|\.git)\//.test(name) || /^tsconfig.*\.json$/.test(name) || name.endsWith('.tgz'));
    expect(stray).toEqual([]);
  });

  it('every relative link in the docs it ships leads to a file it ships (the examples included)', () => {
    const shipped = new Set(tarballFiles);
    const isShipped = (target: string): boolean => shipped.has(target) || tarballFiles.some((name) => name.startsWith(`${target}/`));
    const pages = tarballFiles.filter((name) => name.endsWith('.md'));
    expect(pages).toContain('examples/README.md');
    const missing: string[] = [];
    for (const page of pages) {
      for (const target of targets(fs.readFileSync(path.join(project, 'node_modules', 'filebus', page), 'utf8'))) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
        const filePart = target.split('#', 1)[0]!;
        if (filePart === '') continue;
        const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(page), decodeURIComponent(filePart))).replace(/\/$/, '');
        if (!isShipped(resolved)) missing.push(`${page} -> ${target}`);
      }
    }
    expect(missing).toEqual([]);
  });
});

describe('installed package', () => {
  it('imports with real node and carries a round trip through a bus', () => {
    const script = `
      import { Producer, Consumer, FilebusError } from 'filebus';
      import { pipeline } from 'node:stream/promises';
      import { Readable, Writable } from 'node:stream';
      import fs from 'node:fs';
      import os from 'node:os';
      import path from 'node:path';

      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'filebus-pack-bus-'));
      const filename = path.join(dir, 'bus');
      const options = { filename, mode: 'back-pressure', blockSize: 1000 };
      const sent = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
      const consumer = new Consumer(options);
      const receiving = (async () => {
        const chunks = [];
        for await (const chunk of consumer) chunks.push(chunk);
        return chunks;
      })();
      await pipeline(Readable.from([sent]), new Producer(options));
      const chunks = await receiving;
      let invalid;
      try { new Producer({ filename, blockSize: 0 }); } catch (error) { invalid = error; }
      fs.rmSync(dir, { recursive: true, force: true });
      console.log(JSON.stringify({
        producerIsWritable: new Producer({ filename: path.join(os.tmpdir(), 'unused') }) instanceof Writable,
        equal: Buffer.concat(chunks).equals(sent),
        sizes: chunks.map((chunk) => chunk.length),
        invalidIsFilebusError: invalid instanceof FilebusError,
        invalidCode: invalid && invalid.code,
      }));
      process.exit(0);
    `;
    fs.writeFileSync(path.join(project, 'round-trip.mjs'), script);
    const result = run(process.execPath, ['round-trip.mjs'], project, { timeout: 30_000 });
    expect(result.status, describeRun('node round-trip.mjs', result)).toBe(0);
    expect(JSON.parse(result.stdout.trim().split('\n').at(-1)!)).toEqual({
      producerIsWritable: true,
      equal: true,
      sizes: [1000, 1000, 1000, 1000, 1000],
      invalidIsFilebusError: true,
      invalidCode: 'ERR_FILEBUS_INVALID_OPTION',
    });
  });

  it('require() loads it from CommonJS (Node 20.19 and later load ES modules that way) and carries a round trip', () => {
    const script = `
      const { Producer, Consumer } = require('filebus');
      const { pipeline } = require('node:stream/promises');
      const { Readable } = require('node:stream');
      const fs = require('node:fs');
      const os = require('node:os');
      const path = require('node:path');
      (async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'filebus-pack-cjs-'));
        const options = { filename: path.join(dir, 'bus'), mode: 'back-pressure', blockSize: 100 };
        const sent = Buffer.from('x'.repeat(450));
        const consumer = new Consumer(options);
        const receiving = (async () => { const got = []; for await (const c of consumer) got.push(c); return Buffer.concat(got); })();
        await pipeline(Readable.from([sent]), new Producer(options));
        const got = await receiving;
        fs.rmSync(dir, { recursive: true, force: true });
        console.log(JSON.stringify({ equal: got.equals(sent) }));
        process.exit(0);
      })();
    `;
    fs.writeFileSync(path.join(project, 'round-trip.cjs'), script);
    const result = run(process.execPath, ['round-trip.cjs'], project, { timeout: 30_000 });
    expect(result.status, describeRun('node round-trip.cjs', result)).toBe(0);
    expect(JSON.parse(result.stdout.trim().split('\n').at(-1)!)).toEqual({ equal: true });
  });

  it('exposes only its declared entry points', () => {
    const script = `
      import { createRequire } from 'node:module';
      const require = createRequire(import.meta.url);
      const out = { packageJson: require.resolve('filebus/package.json').endsWith('node_modules/filebus/package.json') };
      try { await import('filebus/dist/index.js'); out.deep = 'imported'; } catch (error) { out.deep = error.code; }
      console.log(JSON.stringify(out));
    `;
    fs.writeFileSync(path.join(project, 'entry-points.mjs'), script);
    const result = run(process.execPath, ['entry-points.mjs'], project, { timeout: 30_000 });
    expect(result.status, describeRun('node entry-points.mjs', result)).toBe(0);
    expect(JSON.parse(result.stdout.trim())).toEqual({ packageJson: true, deep: 'ERR_PACKAGE_PATH_NOT_EXPORTED' });
  });

  it('type declarations resolve and type-check under module NodeNext', () => {
    // The consumer project has no @types/node of its own: lend it the repository's.
    const typesDir = path.join(project, 'node_modules', '@types');
    fs.mkdirSync(typesDir, { recursive: true });
    if (!fs.existsSync(path.join(typesDir, 'node'))) fs.symlinkSync(path.join(ROOT, 'node_modules', '@types', 'node'), path.join(typesDir, 'node'), 'dir');
    fs.writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2022'],
        types: ['node'],
        strict: true,
        noEmit: true,
        // The package's own declarations are checked too.
        skipLibCheck: false,
      },
      files: ['uses-filebus.ts'],
    }, null, 2));
    fs.writeFileSync(path.join(project, 'uses-filebus.ts'), `
      import { Consumer, FilebusError, Producer, type BusMode, type ConsumerOptions, type FilebusErrorCode, type ProducerOptions } from 'filebus';
      import type { Readable, Writable } from 'node:stream';

      const mode: BusMode = 'back-pressure';
      const producerOptions: ProducerOptions = { filename: '/tmp/bus', mode, blockSize: 4096, sleepInterval: 0.1, fileMonitoring: true, signal: new AbortController().signal };
      const consumerOptions: ConsumerOptions = { filename: '/tmp/bus', mode: 'lossy' };
      const producer: Writable = new Producer(producerOptions);
      const consumer: Readable = new Consumer(consumerOptions);
      const closing: Promise<void> = new Producer(producerOptions).close();
      const closingToo: Promise<void> = new Consumer(consumerOptions).close();

      export async function total(c: Consumer): Promise<number> {
        let bytes = 0;
        for await (const chunk of c) {
          const buffer: Buffer = chunk;
          bytes += buffer.length;
          // @ts-expect-error chunks are Buffers, not strings
          const text: string = chunk;
          void text;
        }
        return bytes;
      }

      export function codeOf(error: unknown): FilebusErrorCode | undefined {
        return error instanceof FilebusError ? error.code : undefined;
      }

      // @ts-expect-error filename is required
      new Producer({ mode: 'lossy' });
      // @ts-expect-error there is no such mode
      new Consumer({ filename: '/tmp/bus', mode: 'sometimes' });
      // @ts-expect-error blockSize is a number
      new Producer({ filename: '/tmp/bus', blockSize: '4096' });
      // @ts-expect-error no such error code
      const wrong: FilebusErrorCode = 'ERR_FILEBUS_NOPE';

      void producer; void consumer; void closing; void closingToo; void wrong;
    `);
    const result = run(TSC, ['-p', 'tsconfig.json'], project, { timeout: 60_000 });
    expect(result.status, describeRun('tsc -p tsconfig.json (module NodeNext)', result)).toBe(0);
  });

  it('npx filebus --version prints the package version', () => {
    const result = run('npx', ['--no-install', 'filebus', '--version'], project, { timeout: 60_000 });
    expect(result.status, describeRun('npx filebus --version', result)).toBe(0);
    expect(result.stdout.trim()).toBe(PKG.version);
  });

  it('the installed filebus command carries a back-pressure round trip', async () => {
    const bin = path.join(project, 'node_modules', '.bin', 'filebus');
    const busDir = fs.mkdtempSync(path.join(os.tmpdir(), 'filebus-pack-cli-'));
    try {
      const filename = path.join(busDir, 'bus');
      const message = 'hello through the installed bin\n';
      const consuming = runAsync(bin, ['--filename', filename, '--back-pressure', 'consumer'], project, '');
      const producing = runAsync(bin, ['--filename', filename, '--back-pressure', 'producer'], project, message);
      const [consumed, produced] = await Promise.all([consuming, producing]);
      expect(produced.status, `producer: ${produced.stderr}`).toBe(0);
      expect(consumed.status, `consumer: ${consumed.stderr}`).toBe(0);
      expect(consumed.stdout).toBe(message);
    } finally {
      fs.rmSync(busDir, { recursive: true, force: true });
    }
  });
});
