/** The filebus executables under test: this repository's, and optionally a reference one (FILEBUS_REFERENCE). */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export type Mode = 'lossy' | 'back-pressure' | 'multicast';

export interface Impl {
  readonly id: 'filebus' | 'reference';
  /** For tables: "filebus" or "reference (…/filebus)". */
  readonly label: string;
  /** The command that runs it, before any filebus argument. */
  readonly command: readonly string[];
  readonly hasMulticast: boolean;
  /** A Node process: can take --cpu-prof and the memory preload, reports chunk counts with -v, and watches with inotify. */
  readonly node: boolean;
}

/** The newest modification time of any file under dir (ms), or 0. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    try { newest = Math.max(newest, fs.statSync(full).mtimeMs); } catch { /* removed meanwhile */ }
  }
  return newest;
}

/**
 * A filebus build (dist, with bin/ and package.json from root), from a private copy: others may
 * rebuild dist/ (which first deletes it) while the benchmark runs. The copy
 * lives under bench/tmp/ so that its imports still resolve to the
 * repository's node_modules. Waits for a build in progress to settle.
 */
export async function snapshotFilebus(root: string, dist: string, into: string): Promise<Impl> {
  const main = path.join(dist, 'cli', 'main.js');
  const deadline = Date.now() + 120_000;
  for (;;) {
    const settled = fs.existsSync(main) && Date.now() - newestMtime(dist) > 2000;
    if (settled) break;
    if (Date.now() > deadline) throw new Error(`${dist} is not built (or keeps changing): run npx tsc -p tsconfig.build.json first`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  fs.rmSync(into, { recursive: true, force: true });
  fs.mkdirSync(path.join(into, 'bin'), { recursive: true });
  fs.cpSync(dist, path.join(into, 'dist'), { recursive: true });
  fs.copyFileSync(path.join(root, 'bin', 'filebus'), path.join(into, 'bin', 'filebus'));
  fs.copyFileSync(path.join(root, 'package.json'), path.join(into, 'package.json'));
  fs.chmodSync(path.join(into, 'bin', 'filebus'), 0o755);
  return { id: 'filebus', label: 'filebus', command: [process.execPath, path.join(into, 'bin', 'filebus')], hasMulticast: true, node: true };
}

/**
 * Builds filebus as it is at a commit (git archive + tsc) under `into`, so a
 * run measures exactly that commit whatever the working tree holds. Returns
 * the root of the build (bin/, dist/, package.json). Reuses a finished build.
 */
export function buildCommit(repo: string, rev: string, intoBase: string): { root: string; commit: string } {
  const sha = spawnSync('git', ['rev-parse', '--verify', `${rev}^{commit}`], { cwd: repo, encoding: 'utf8' });
  if (sha.status !== 0) throw new Error(`--commit ${rev}: not a commit (${sha.stderr.trim()})`);
  const commit = sha.stdout.trim();
  const root = path.join(intoBase, `build-${commit.slice(0, 12)}`);
  if (fs.existsSync(path.join(root, 'dist', 'cli', 'main.js'))) return { root, commit };
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(root, { recursive: true });
  const archive = spawnSync('bash', ['-c', `git archive ${commit} src bin package.json tsconfig.json tsconfig.build.json | tar -x -C ${JSON.stringify(root)}`], {
    cwd: repo, encoding: 'utf8',
  });
  if (archive.status !== 0) throw new Error(`git archive ${commit}: ${archive.stderr.trim()}`);
  const tsc = spawnSync(path.join(repo, 'node_modules', '.bin', 'tsc'), ['-p', path.join(root, 'tsconfig.build.json')], { cwd: root, encoding: 'utf8' });
  if (tsc.status !== 0) throw new Error(`building ${commit}: ${(tsc.stdout + tsc.stderr).trim().split('\n').slice(0, 5).join(' | ')}`);
  return { root, commit };
}

/** The reference named by FILEBUS_REFERENCE, or undefined. */
export function referenceImpl(): Impl | undefined {
  const exe = process.env['FILEBUS_REFERENCE'];
  if (!exe) return undefined;
  try {
    fs.accessSync(exe, fs.constants.X_OK);
  } catch {
    throw new Error(`FILEBUS_REFERENCE=${exe} is not an executable file`);
  }
  return { id: 'reference', label: `reference (${exe})`, command: [exe], hasMulticast: false, node: false };
}

export interface BusArgs {
  readonly file: string;
  readonly mode: Mode;
  readonly role: 'producer' | 'consumer';
  readonly blockSize?: number;
  /** -v: the filebus producer then reports its chunk count on exit. */
  readonly verbose?: boolean;
}

export function busCommand(impl: Impl, args: BusArgs): string[] {
  const argv = [...impl.command, '--filename', args.file];
  if (args.mode === 'back-pressure') argv.push('--back-pressure');
  if (args.mode === 'multicast') {
    if (!impl.hasMulticast) throw new Error(`${impl.label} has no --multicast`);
    argv.push('--multicast');
  }
  if (args.blockSize !== undefined) argv.push('--block-size', String(args.blockSize));
  if (args.verbose && impl.node) argv.push('-v');
  argv.push(args.role);
  return argv;
}

/** Chunks published, from a filebus producer's `-v` summary line. */
export function chunksFromStderr(stderr: string): number | undefined {
  const match = /done: (\d+) chunks, (\d+) bytes/.exec(stderr);
  return match ? Number(match[1]) : undefined;
}
