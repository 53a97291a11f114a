/**
 * Permissions: `--file-mode 0600` (alias `--mode`) gives exactly those bits
 * to every file a bus creates, and 0700 (r implies x) to every directory,
 * whatever the umask; temporary files are never, even for an instant, more
 * open than the mode asked. A consumer (or producer) run as an unprivileged
 * user against a bus it may not use fails with exit 1 and one line saying
 * "permission denied" and naming the path.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ROOT, BIN, tempDir } from '../helpers/cli.js';
import { startProcess, startFilebus, runFilebus, killAll } from '../helpers/procs.js';
import { within, until } from '../helpers/wait.js';
import { tempFiles } from '../helpers/bus-layout.js';
import { chunk, chunks as makeChunks, type Format } from '../helpers/records.js';
import { BlockFeeder, oneLineError, writeResults } from '../helpers/reliability.js';

/** Runs node under umask 0, so only --file-mode can keep files closed. */
const UMASK0 = ['sh', '-c', 'umask 000 && exec "$0" "$@"', process.execPath];
const FORMAT: Format = { recordSize: 256, perChunk: 16 };
const dirs: string[] = [];
const unmounts: string[] = [];
const figures: Record<string, unknown> = {};

function scratch(): string {
  const d = tempDir('filebus-reliability-perm-');
  dirs.push(d);
  return d;
}

afterEach(async () => {
  await killAll();
});

afterAll(() => {
  for (const m of unmounts.reverse()) spawnSync('umount', ['-l', m]);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  writeResults('permissions', figures);
});

function mode(p: string): string {
  return (fs.lstatSync(p).mode & 0o7777).toString(8).padStart(4, '0');
}

/** Every entry under `root` (recursive) with its permission bits. */
function modes(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out[e.isDirectory() ? `${r}/` : r] = mode(path.join(root, r));
      if (e.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

describe('--file-mode', () => {
  it('multicast with --file-mode 0600 under umask 0: FILE, FILE.lock, segments, cursors, registrations, temporary files are 0600; every directory it creates 0700', async () => {
    const dir = scratch();
    const top = path.join(dir, 'made-by-filebus');
    const bus = path.join(top, 'deeper', 'bus');
    const common = ['--filename', bus, '--multicast', '--file-mode', '0600'];
    // The producer comes first: it creates the directories (consumers create
    // none), registers, and waits for input that starts once both consumers have joined.
    const feeder = new BlockFeeder(dir, 'in.fifo', (i) => chunk(FORMAT, 'PERM00', i));
    const producer = startFilebus([...common, '--window', '4', '--block-size', '4096', 'producer'], { prefix: UMASK0, stdin: { fd: feeder.readFd } });
    feeder.releaseReadEnd();
    await until(() => fs.existsSync(`${bus}.producers`) && fs.readdirSync(`${bus}.producers`).some((n) => n.endsWith('.producer')), 'the producer to register');
    // alice does not read her output: she blocks once her socket is full, and
    // the producer blocks at the window with its next chunk written to a temporary file.
    const alice = startFilebus([...common, '--name', 'alice', 'consumer'], { prefix: UMASK0, paused: true });
    const other = startFilebus([...common, 'consumer'], { prefix: UMASK0 });
    await until(() => fs.existsSync(`${bus}.consumers`) && fs.readdirSync(`${bus}.consumers`).length === 2, 'the consumers to register');
    feeder.start(() => 400);
    let stable = { name: '', since: 0 };
    await until(() => {
      const t = tempFiles(bus);
      if (t.length !== 1) return false;
      if (t[0] !== stable.name) stable = { name: t[0]!, since: Date.now() };
      return Date.now() - stable.since > 300;
    }, 'the producer to block at the window with a temporary file', 60_000, { everyMs: 10 });

    const seen = modes(top);
    const temps = tempFiles(bus);
    const files = Object.entries(seen).filter(([n]) => !n.endsWith('/'));
    const directories = Object.entries(seen).filter(([n]) => n.endsWith('/'));
    // What a multicast bus is made of, all present at this moment.
    expect(Object.keys(seen)).toEqual(expect.arrayContaining([
      'deeper/', 'deeper/bus', 'deeper/bus.lock', 'deeper/bus.segments/', 'deeper/bus.consumers/', 'deeper/bus.producers/',
      'deeper/bus.consumers/alice.cursor', ...temps.map((t) => `deeper/${t}`),
    ]));
    expect(files.some(([n]) => n.startsWith('deeper/bus.segments/'))).toBe(true);
    expect(files.filter(([n]) => n.startsWith('deeper/bus.consumers/'))).toHaveLength(2);
    expect(files.filter(([n]) => n.startsWith('deeper/bus.producers/'))).toHaveLength(1);
    expect(Object.fromEntries(files.filter(([, m]) => m !== '0600')), 'files not 0600').toEqual({});
    expect(Object.fromEntries(directories.filter(([, m]) => m !== '0700')), 'directories not 0700').toEqual({});
    expect(mode(top), 'a parent directory filebus created').toBe('0700');
    figures.multicast0600 = { filesChecked: files.length, directoriesChecked: directories.length + 1, temporaryFilesCaught: temps.length };

    alice.flow();
    feeder.close();
    for (const p of [producer, alice, other]) expect((await within(p.done, 60_000, 'the bus to drain')).code).toBe(0);
  });

  it('back-pressure with --mode 0600 (the alias) and lossy with --file-mode 0640, under umask 0', async () => {
    const dir = scratch();
    const bp = path.join(dir, 'bp');
    const input = path.join(dir, 'in');
    fs.writeFileSync(input, makeChunks(FORMAT, 'PERM01', 3));
    // No consumer: the producer publishes chunk 0 and waits with chunk 1 in a temporary file.
    const producer = startFilebus(['--filename', bp, '--back-pressure', '--mode', '0600', '--block-size', '4096', 'producer'], { prefix: UMASK0, stdin: { file: input } });
    await until(() => fs.existsSync(bp) && tempFiles(bp).length === 1, 'the producer to wait with a temporary file');
    const temp = tempFiles(bp)[0]!;
    expect({ file: mode(bp), lock: mode(`${bp}.lock`), temp: mode(path.join(dir, temp)) }).toEqual({ file: '0600', lock: '0600', temp: '0600' });
    const drained = await runFilebus(['--filename', bp, '--back-pressure', 'consumer']);
    expect(drained.code).toBe(0);
    expect((await within(producer.done, 30_000, 'the producer')).code).toBe(0);

    const lossy = path.join(dir, 'lossy');
    const made = await runFilebus(['--filename', lossy, '--file-mode', '0640', '--block-size', '4096', 'producer'], { prefix: UMASK0, stdin: { file: input } });
    expect(made.code).toBe(0);
    expect({ file: mode(lossy), lock: mode(`${lossy}.lock`) }).toEqual({ file: '0640', lock: '0640' });
  });

  it('files whose flock means "held" (FILE.lock, cursors, registrations) never grant \'other\' anything: --file-mode 0644, and no mode under umask 022', async () => {
    const dir = scratch();
    const input = path.join(dir, 'in');
    fs.writeFileSync(input, makeChunks(FORMAT, 'PERM03', 2));
    const UMASK022 = ['sh', '-c', 'umask 022 && exec "$0" "$@"', process.execPath];
    const found: Record<string, Record<string, string>> = {};
    for (const [label, modeArgs] of [['0644', ['--file-mode', '0644']], ['umask 022', []]] as const) {
      const bus = path.join(dir, `bus-${label.replace(' ', '')}`);
      const common = ['--filename', bus, '--multicast', ...modeArgs];
      // A named consumer that does not read: its cursor stays while the producer's registration is looked at.
      const alice = startFilebus([...common, '--name', 'alice', 'consumer'], { prefix: UMASK022, paused: true });
      await until(() => fs.existsSync(`${bus}.consumers/alice.cursor`), 'alice to register');
      // Fed through a FIFO held open here, so the producer (and its registration) stays until it is closed.
      const fifo = path.join(dir, `fifo-${label.replace(' ', '')}`);
      expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
      const feed = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
      const producer = startFilebus([...common, '--block-size', '4096', 'producer'], { prefix: UMASK022, stdin: { file: fifo } });
      fs.writeSync(feed, fs.readFileSync(input));
      await until(() => fs.existsSync(bus) && fs.readdirSync(`${bus}.producers`).some((n) => n.endsWith('.producer')), 'the producer to publish');
      const registration = fs.readdirSync(`${bus}.producers`).find((n) => n.endsWith('.producer'))!;
      found[label] = {
        file: mode(bus), lock: mode(`${bus}.lock`), cursor: mode(`${bus}.consumers/alice.cursor`),
        registration: mode(path.join(`${bus}.producers`, registration)),
      };
      fs.closeSync(feed);
      alice.flow();
      for (const p of [producer, alice]) expect((await within(p.done, 30_000, 'the bus to drain')).code).toBe(0);
    }
    expect(found).toEqual({
      '0644': { file: '0644', lock: '0640', cursor: '0640', registration: '0640' },
      'umask 022': { file: '0644', lock: '0640', cursor: '0640', registration: '0640' },
    });
    figures.flockedFiles = found;
  });

  it('temporary files are never more open than --file-mode, even for an instant (umask 0, watched by a tight loop)', async () => {
    const dir = scratch();
    const results: Record<string, unknown> = {};
    for (const fileMode of ['0600', '0640']) {
      const bus = path.join(dir, `bus${fileMode}`);
      const input = path.join(dir, `in${fileMode}`);
      fs.writeFileSync(input, makeChunks({ recordSize: 64, perChunk: 1 }, 'PERM02', 1500));
      // The watcher polls the directory as fast as it can, lstat-ing every temporary name it sees.
      let report = '';
      const watcher = startProcess(process.execPath, ['-e', WATCHER, dir, path.basename(bus)], { stdin: 'pipe', stdout: (d) => { report += d.toString(); } });
      await until(() => report.includes('ready'), 'the watcher');
      const made = await runFilebus(['--filename', bus, '--file-mode', fileMode, '--block-size', '64', 'producer'], { prefix: UMASK0, stdin: { file: input } });
      expect({ code: made.code, stderr: made.stderr }).toEqual({ code: 0, stderr: '' });
      watcher.stdin!.end();
      await watcher.done;
      const seen = JSON.parse(report.slice(report.indexOf('{'))) as { temps: number; samples: number; modes: Record<string, number> };
      expect(seen.temps, 'temporary files caught').toBeGreaterThan(0);
      const allowed = parseInt(fileMode, 8);
      const wider = Object.keys(seen.modes).filter((m) => (parseInt(m, 8) & ~allowed) !== 0);
      expect(wider, `modes seen on temporary files with --file-mode ${fileMode}: ${JSON.stringify(seen.modes)}`).toEqual([]);
      results[fileMode] = seen;
    }
    figures.temporaryFilesWatched = results;
  });
});

/** Polls DIR for BASE's temporary files until stdin closes; prints what modes it saw. */
const WATCHER = String.raw`
const fs = require('node:fs');
const path = require('node:path');
const [dir, base] = process.argv.slice(1);
let open = true;
process.stdin.on('end', () => { open = false; }).resume();
const modes = {};
const names = new Set();
let samples = 0;
process.stdout.write('ready\n');
function spin() {
  const until = Date.now() + 20;
  while (Date.now() < until) {
    for (const n of fs.readdirSync(dir)) {
      if (!(n.startsWith('.' + base + '.') && n.endsWith('.new'))) continue;
      try {
        const m = (fs.lstatSync(path.join(dir, n)).mode & 0o7777).toString(8).padStart(4, '0');
        modes[m] = (modes[m] || 0) + 1;
        names.add(n);
        samples++;
      } catch {}
    }
  }
  if (open) setImmediate(spin);
  else process.stdout.write(JSON.stringify({ temps: names.size, samples, modes }) + '\n');
}
spin();
`;

// ------------------------------------------------------------ another user

interface Nobody {
  prefix: string[];
  bin: string;
}

/**
 * How to run filebus as nobody: setpriv, with node and the repository
 * reachable (bind-mounted under a world-readable directory when they are not).
 */
function asNobody(): Nobody {
  const prefixFor = (node: string): string[] => ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', node];
  const reachable = (node: string, bin: string): boolean =>
    spawnSync(prefixFor(node)[0]!, [...prefixFor(node).slice(1), '-e', `require('fs').accessSync(${JSON.stringify(bin)}, require('fs').constants.R_OK)`]).status === 0;
  if (reachable(process.execPath, BIN)) return { prefix: prefixFor(process.execPath), bin: BIN };
  const base = scratch();
  fs.chmodSync(base, 0o755);
  const repo = path.join(base, 'repo');
  const nodeDir = path.join(base, 'node');
  fs.mkdirSync(repo);
  fs.mkdirSync(nodeDir);
  spawnSync('mount', ['--bind', ROOT, repo], { stdio: 'inherit' });
  unmounts.push(repo);
  spawnSync('mount', ['--bind', path.dirname(process.execPath), nodeDir], { stdio: 'inherit' });
  unmounts.push(nodeDir);
  const node = path.join(nodeDir, path.basename(process.execPath));
  const bin = path.join(repo, path.relative(ROOT, BIN));
  if (!reachable(node, bin)) throw new Error('cannot make node and filebus reachable for user nobody');
  return { prefix: prefixFor(node), bin };
}

describe('an unprivileged user against a 0600 bus', () => {
  /** A world-writable sticky directory (like /tmp) holding a 0600 bus of each mode, made by root. */
  async function busesOfRoot(): Promise<{ pub: string; lossy: string; bp: string; mc: string }> {
    const dir = scratch();
    fs.chmodSync(dir, 0o755);
    const pub = path.join(dir, 'pub');
    fs.mkdirSync(pub);
    fs.chmodSync(pub, 0o1777);
    const input = path.join(dir, 'in');
    fs.writeFileSync(input, makeChunks(FORMAT, 'ROOT00', 3));
    const lossy = path.join(pub, 'lossy');
    const bp = path.join(pub, 'bp');
    const mc = path.join(pub, 'mc');
    expect((await runFilebus(['--filename', lossy, '--file-mode', '0600', 'producer'], { stdin: { file: input } })).code).toBe(0);
    expect((await runFilebus(['--filename', mc, '--multicast', '--file-mode', '0600', '--retain', 'all', 'producer'], { stdin: { file: input } })).code).toBe(0);
    const named = await runFilebus(['--filename', mc, '--multicast', '--name', 'rootsname', 'consumer']);
    expect(named.code).toBe(0);
    // Back-pressure: one chunk on the bus, its producer gone.
    const producer = startFilebus(['--filename', bp, '--back-pressure', '--file-mode', '0600', '--block-size', '4096', 'producer'], { stdin: { file: input } });
    await until(() => fs.existsSync(bp), 'a chunk on the back-pressure bus');
    producer.child.kill('SIGKILL');
    await producer.exited;
    for (const n of tempFiles(bp)) fs.rmSync(path.join(pub, n));
    return { pub, lossy, bp, mc };
  }

  function ownedByNobody(root: string): string[] {
    const found: string[] = [];
    const walk = (d: string): void => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (fs.lstatSync(p).uid !== 0) found.push(p);
        if (e.isDirectory()) walk(p);
      }
    };
    walk(root);
    return found;
  }

  it('consumers of every mode fail with exit 1 and one "permission denied" line naming the path', async () => {
    const nobody = asNobody();
    const { pub, lossy, bp, mc } = await busesOfRoot();
    const cases: Array<[string, string, string[]]> = [
      ['lossy', lossy, []],
      ['back-pressure', bp, ['--back-pressure']],
      ['multicast', mc, ['--multicast']],
      ['multicast named', mc, ['--multicast', '--name', 'mine']],
      ['multicast, an existing name', mc, ['--multicast', '--name', 'rootsname']],
    ];
    const seen: Record<string, string> = {};
    for (const [label, bus, args] of cases) {
      const r = await runFilebus(['--filename', bus, ...args, 'consumer'], { prefix: nobody.prefix, bin: nobody.bin, timeoutMs: 30_000, onTimeout: 'report' });
      expect({ label, timedOut: r.timedOut, code: r.code, out: r.stdout.length }).toEqual({ label, timedOut: false, code: 1, out: 0 });
      const message = oneLineError(r.stderr);
      expect(message, label).toMatch(/permission denied/);
      expect(message.includes(bus), `${label}: the message names the bus path: ${message}`).toBe(true);
      seen[label] = message;
    }
    expect(ownedByNobody(pub), 'nothing made by nobody').toEqual([]);
    figures.unprivilegedConsumers = seen;
  });

  it('producers of every mode fail with exit 1 and one "permission denied" line naming the path', async () => {
    const nobody = asNobody();
    const { pub, lossy, bp, mc } = await busesOfRoot();
    const input = path.join(path.dirname(pub), 'in');
    fs.chmodSync(input, 0o644);
    const cases: Array<[string, string, string[]]> = [
      ['lossy', lossy, []],
      ['back-pressure (FILE taken first)', bp, ['--back-pressure']],
      ['multicast', mc, ['--multicast']],
    ];
    const seen: Record<string, string> = {};
    for (const [label, bus, args] of cases) {
      // Back-pressure: the bus must be free for the producer to get as far as the lock.
      if (label.startsWith('back-pressure')) fs.rmSync(bp, { force: true });
      const r = await runFilebus(['--filename', bus, ...args, 'producer'], { prefix: nobody.prefix, bin: nobody.bin, stdin: { file: input }, timeoutMs: 30_000, onTimeout: 'report' });
      expect({ label, timedOut: r.timedOut, code: r.code }).toEqual({ label, timedOut: false, code: 1 });
      const message = oneLineError(r.stderr);
      expect(message, label).toMatch(/permission denied/);
      expect(message.includes(bus), `${label}: the message names the bus path: ${message}`).toBe(true);
      seen[label] = message;
      expect(tempFiles(bus), `${label}: no temporary file left`).toEqual([]);
    }
    expect(ownedByNobody(pub), 'nothing made by nobody is left').toEqual([]);
    figures.unprivilegedProducers = seen;
  });
});
