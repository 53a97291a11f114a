/**
 * Where the benchmark runs: a scratch directory on disk (inputs and the
 * "disk" bus), a tmpfs mounted for the run (the "tmpfs" bus), and the facts
 * about the machine that go into results.json.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface MountInfo {
  readonly path: string;
  readonly mountPoint: string;
  readonly fstype: string;
  readonly source: string;
}

/** The mount a path lives on, from /proc/self/mounts (longest matching mount point). */
export function mountOf(target: string): MountInfo {
  const real = fs.realpathSync(target);
  let best: MountInfo = { path: real, mountPoint: '/', fstype: 'unknown', source: 'unknown' };
  let text = '';
  try {
    text = fs.readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return best;
  }
  for (const line of text.split('\n')) {
    const [source, point, fstype] = line.split(' ').map((f) => f.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
    if (!source || !point || !fstype) continue;
    const inside = real === point || real.startsWith(point.endsWith('/') ? point : `${point}/`);
    if (inside && point.length >= best.mountPoint.length) best = { path: real, mountPoint: point, fstype, source };
  }
  return best;
}

export interface Workspace {
  /** Scratch root on disk (under /var/tmp). */
  readonly root: string;
  readonly inputs: string;
  /** Bus directory on the disk. */
  readonly disk: string;
  /** Bus directory on tmpfs. */
  readonly tmpfs: string;
  /** How the tmpfs directory came about: mounted for this run, or a fallback. */
  readonly tmpfsHow: string;
  cleanup(): void;
}

/**
 * Makes the scratch directories and mounts a tmpfs (`mount -t tmpfs -o
 * size=3g`, which needs root). Without the mount it falls back to a
 * directory in /dev/shm when that is a tmpfs, and says so.
 */
export function createWorkspace(log: (line: string) => void): Workspace {
  const base = fs.existsSync('/var/tmp') ? '/var/tmp' : os.tmpdir();
  const root = fs.mkdtempSync(path.join(base, 'filebus-bench-'));
  const inputs = path.join(root, 'inputs');
  const disk = path.join(root, 'disk');
  const mountPoint = path.join(root, 'tmpfs');
  for (const dir of [inputs, disk, mountPoint]) fs.mkdirSync(dir);

  let tmpfs = mountPoint;
  let tmpfsHow: string;
  let mounted = false;
  let fallback: string | undefined;
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=3g', 'tmpfs', mountPoint], { encoding: 'utf8' });
  if (mount.status === 0 && mountOf(mountPoint).fstype === 'tmpfs') {
    mounted = true;
    tmpfsHow = `tmpfs mounted for this run at ${mountPoint} (size=3g)`;
  } else {
    const reason = (mount.stderr || mount.error?.message || `status ${mount.status}`).trim();
    if (fs.existsSync('/dev/shm') && mountOf('/dev/shm').fstype === 'tmpfs') {
      fallback = fs.mkdtempSync('/dev/shm/filebus-bench-');
      tmpfs = fallback;
      tmpfsHow = `mount failed (${reason}); using ${fallback} on the /dev/shm tmpfs`;
    } else {
      tmpfs = path.join(root, 'not-tmpfs');
      fs.mkdirSync(tmpfs);
      tmpfsHow = `mount failed (${reason}) and /dev/shm is no tmpfs: the "tmpfs" bus is on ${mountOf(root).fstype}`;
    }
    log(`note: ${tmpfsHow}`);
  }

  let cleaned = false;
  return {
    root,
    inputs,
    disk,
    tmpfs,
    tmpfsHow,
    cleanup() {
      if (cleaned) return;
      cleaned = true;
      if (mounted) {
        let umount = spawnSync('umount', [mountPoint], { encoding: 'utf8' });
        if (umount.status !== 0) umount = spawnSync('umount', ['-l', mountPoint], { encoding: 'utf8' });
        if (umount.status !== 0) log(`warning: could not unmount ${mountPoint}: ${umount.stderr.trim()}`);
      }
      if (fallback) fs.rmSync(fallback, { recursive: true, force: true });
      if (!mounted || mountOf(mountPoint).fstype !== 'tmpfs') fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

function run(command: string, args: string[], cwd?: string): string | undefined {
  const result = spawnSync(command, args, { encoding: 'utf8', cwd });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

export interface MachineFacts {
  readonly date: string;
  readonly hostname: string;
  readonly nproc: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly platform: string;
  readonly loadAverageAtStart: number[];
  readonly filebusCommit: string | undefined;
  readonly filebusDirty: boolean | undefined;
  readonly mounts: Record<string, MountInfo>;
  readonly tmpfs: string;
  readonly tools: Record<string, string | undefined>;
}

export function machineFacts(repo: string, ws: Workspace): MachineFacts {
  const nproc = Number(run('nproc', []) ?? os.availableParallelism());
  const status = run('git', ['status', '--porcelain', '--untracked-files=no', 'src'], repo);
  return {
    date: new Date().toISOString(),
    hostname: os.hostname(),
    nproc,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    loadAverageAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
    filebusCommit: run('git', ['rev-parse', 'HEAD'], repo),
    filebusDirty: status === undefined ? undefined : status.length > 0,
    mounts: { tmpfs: mountOf(ws.tmpfs), disk: mountOf(ws.disk), inputs: mountOf(ws.inputs) },
    tmpfs: ws.tmpfsHow,
    tools: {
      bash: run('bash', ['-c', 'echo $BASH_VERSION']),
      coreutils: run('cat', ['--version'])?.split('\n')[0],
    },
  };
}
