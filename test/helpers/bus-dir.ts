/**
 * The bus-directory fixture: a fresh temporary directory for each test, a
 * bus path in it, and the cleanup every test that starts processes needs.
 *
 *     const tmp = useBusDir('filebus-cli-safety-', { ownDir: true });
 *     it('...', async () => { startFilebus(['--filename', tmp.bus, ...]); });
 *
 * `useBusDir` registers an afterEach in the file (or describe block) that
 * calls it: it kills every process the test started (procs.ts killAll) and
 * then removes every directory the fixture made for that test. Directories
 * are made on first use, so a test that needs none costs nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach } from 'vitest';
import { tempDir } from './cli.js';
import { killAll } from './procs.js';

export interface BusDirOptions {
  /**
   * Put the bus in a subdirectory of its own (`dir/bus-dir/bus`), so that
   * listing `busDir` shows only what filebus made there. Default: the bus
   * is `dir/bus`.
   */
  readonly ownDir?: boolean;
}

export interface BusDir {
  /** The test's temporary directory (inputs, outputs). */
  readonly dir: string;
  /** The directory holding the bus: `dir`, or `dir/bus-dir` with ownDir. */
  readonly busDir: string;
  /** The bus: `busDir/bus`. */
  readonly bus: string;
  /** Another fresh temporary directory, removed after the test with the rest. */
  another(prefix?: string): string;
}

export function useBusDir(prefix: string, options: BusDirOptions = {}): BusDir {
  const made: string[] = [];
  let current: { dir: string; busDir: string } | undefined;
  const open = (): { dir: string; busDir: string } => {
    if (!current) {
      const dir = tempDir(prefix);
      made.push(dir);
      const busDir = options.ownDir ? path.join(dir, 'bus-dir') : dir;
      if (options.ownDir) fs.mkdirSync(busDir);
      current = { dir, busDir };
    }
    return current;
  };
  afterEach(async () => {
    await killAll();
    current = undefined;
    for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    get dir() { return open().dir; },
    get busDir() { return open().busDir; },
    get bus() { return path.join(open().busDir, 'bus'); },
    another(another = prefix) {
      const dir = tempDir(another);
      made.push(dir);
      return dir;
    },
  };
}
