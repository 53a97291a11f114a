/**
 * Measures what two FUSE mounts of one GlusterFS volume show each other:
 * the facts filebus's protocol leans on (rename visibility, open
 * descriptors, flock, link, inotify, statfs, mkdir/O_EXCL atomicity).
 *
 *   npx tsx test/distributed/probe.ts [--trials N] [--only a,b,...]
 *
 * Reads FILEBUS_MOUNT_A and FILEBUS_MOUNT_B (see setup.sh). Prints a
 * readable report on stdout and, with --json FILE, the raw numbers.
 * test/distributed/measure.sh runs it under each mount configuration.
 *
 * Every latency is in milliseconds, from the moment the operation on A
 * returned to the moment B first observed its effect, B polling in a tight
 * loop (each poll is a real system call through B's mount). A result of
 * "timeout" means B had not seen it after TIMEOUT_MS.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { flock, flockSync } from 'fs-ext';

const TIMEOUT_MS = 5000;
const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const TRIALS = Number(flag('--trials') ?? 12);
const ONLY = flag('--only')?.split(',');
const JSON_OUT = flag('--json');

const A = process.env.FILEBUS_MOUNT_A;
const B = process.env.FILEBUS_MOUNT_B;
if (!A || !B) {
  console.error('probe: FILEBUS_MOUNT_A and FILEBUS_MOUNT_B must be set (eval "$(bash test/distributed/setup.sh)")');
  process.exit(2);
}

const results: Record<string, unknown> = {
  mountOptionsA: process.env.FILEBUS_GLUSTER_ACTIVE_MOUNT_OPTIONS_A,
  mountOptionsB: process.env.FILEBUS_GLUSTER_ACTIVE_MOUNT_OPTIONS_B,
  volumeOptions: process.env.FILEBUS_GLUSTER_ACTIVE_VOLUME_OPTIONS,
};
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const now = () => performance.now();
const code = (e: unknown): string => {
  const err = e as NodeJS.ErrnoException;
  if (err.errno === -116) return 'ESTALE';
  return err.code ?? String(e);
};

interface Trial {
  ms: number | 'timeout';
  /** Observations of the old state before the new one showed. */
  stale: number;
  /** Errors seen while polling, by code. */
  errors: Record<string, number>;
}

function summarize(trials: Trial[]): Record<string, unknown> {
  const ok = trials.map((t) => t.ms).filter((m): m is number => m !== 'timeout').sort((a, b) => a - b);
  const errors: Record<string, number> = {};
  for (const t of trials) for (const [k, v] of Object.entries(t.errors)) errors[k] = (errors[k] ?? 0) + v;
  const pick = (q: number) => (ok.length ? Number(ok[Math.min(ok.length - 1, Math.floor(q * ok.length))]!.toFixed(1)) : null);
  return {
    trials: trials.length,
    timeouts: trials.length - ok.length,
    immediate: ok.filter((m) => m < 5).length,
    min: ok.length ? Number(ok[0]!.toFixed(1)) : null,
    median: pick(0.5),
    max: ok.length ? Number(ok.at(-1)!.toFixed(1)) : null,
    staleTrials: trials.filter((t) => t.stale > 0).length,
    errors,
  };
}

function report(name: string, value: unknown): void {
  results[name] = value;
  console.log(`${name}: ${JSON.stringify(value)}`);
}

function tick(trial: Trial, fn: () => 'new' | 'old' | 'absent'): boolean {
  try {
    const seen = fn();
    if (seen === 'new') return true;
    if (seen === 'old') trial.stale += 1;
  } catch (e) {
    trial.errors[code(e)] = (trial.errors[code(e)] ?? 0) + 1;
  }
  return false;
}

/** Polls `observe` through B until it reports 'new', after `act` ran on A. */
async function measure(act: () => void, observe: () => 'new' | 'old' | 'absent', warmMs = 200): Promise<Trial> {
  const trial: Trial = { ms: 'timeout', stale: 0, errors: {} };
  // B looks for a while first, as a polling consumer would.
  const warmEnd = now() + warmMs;
  while (now() < warmEnd) {
    try { observe(); } catch { /* warming */ }
    await sleep(10);
  }
  act();
  const t0 = now();
  while (now() - t0 < TIMEOUT_MS) {
    if (tick(trial, observe)) {
      trial.ms = now() - t0;
      break;
    }
  }
  return trial;
}

function readWhole(file: string): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const n = fs.readSync(fd, buf, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}

function lstatIno(file: string): bigint | undefined {
  try {
    return fs.lstatSync(file, { bigint: true }).ino;
  } catch (e) {
    if (code(e) === 'ENOENT') return undefined;
    throw e;
  }
}

/** Replaces dir/FILE through A by rename, the way a filebus producer does. */
function publishOnA(dir: string, content: Buffer): bigint {
  const tmp = path.join(A!, dir, `.tmp.${process.pid}.${randomBytes(4).toString('hex')}`);
  fs.writeFileSync(tmp, content);
  fs.renameSync(tmp, path.join(A!, dir, 'FILE'));
  return fs.lstatSync(path.join(A!, dir, 'FILE'), { bigint: true }).ino;
}

function freshDir(name: string): string {
  const dir = `probe-${name}-${process.pid}`;
  fs.rmSync(path.join(A!, dir), { recursive: true, force: true });
  fs.mkdirSync(path.join(A!, dir));
  return dir;
}

// (a) rename visibility ------------------------------------------------------

async function renameVisibility(): Promise<void> {
  type Method = 'stat' | 'open-fstat-read' | 'readdir-then-open' | 'open-kept-fd-fstat';
  const methods: Method[] = ['stat', 'open-fstat-read', 'readdir-then-open'];
  const out: Record<string, unknown> = {};
  for (const method of methods) {
    const dir = freshDir(`rename-${method}`);
    const fileB = path.join(B!, dir, 'FILE');
    let content = randomBytes(64);
    let ino = publishOnA(dir, content);
    const trials: Trial[] = [];
    const sameInoOnB: boolean[] = [];
    for (let k = 0; k < TRIALS; k++) {
      const next = randomBytes(64);
      let nextIno = 0n;
      const t = await measure(
        () => { nextIno = publishOnA(dir, next); },
        () => {
          if (method === 'stat') {
            const i = lstatIno(fileB);
            return i === undefined ? 'absent' : nextIno !== 0n && i === nextIno ? 'new' : 'old';
          }
          if (method === 'readdir-then-open') fs.readdirSync(path.join(B!, dir));
          const data = readWhole(fileB);
          if (data.equals(next)) return 'new';
          if (data.equals(content)) return 'old';
          throw Object.assign(new Error('torn'), { code: `UNEXPECTED_CONTENT_${data.length}B` });
        },
      );
      trials.push(t);
      sameInoOnB.push(lstatIno(fileB) === nextIno);
      content = next;
      ino = nextIno;
      await sleep(50 + Math.random() * 1000);
    }
    void ino;
    out[method] = { ...summarize(trials), inodeNumbersAgree: sameInoOnB.every(Boolean), raw: trials.map((t) => (t.ms === 'timeout' ? t.ms : Number(t.ms.toFixed(1)))) };
    fs.rmSync(path.join(A!, dir), { recursive: true, force: true });
  }
  report('a.rename-over-FILE', out);
}

/** A new name appears on A (rename of a temp file to a name B never saw, or one B polled while absent). */
async function newNameVisibility(): Promise<void> {
  const dir = freshDir('newname');
  const out: Record<string, unknown> = {};
  // cold: B never looked the name up; one open right after A's rename.
  let coldOk = 0;
  const coldErrors: Record<string, number> = {};
  for (let k = 0; k < TRIALS; k++) {
    const name = `seg.cold.${k}`;
    const data = randomBytes(64);
    const tmp = path.join(A!, dir, `.tmp.${k}`);
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, path.join(A!, dir, name));
    try {
      if (readWhole(path.join(B!, dir, name)).equals(data)) coldOk += 1;
      else coldErrors.wrongContent = (coldErrors.wrongContent ?? 0) + 1;
    } catch (e) {
      coldErrors[code(e)] = (coldErrors[code(e)] ?? 0) + 1;
    }
  }
  out['open-never-looked-up'] = { trials: TRIALS, firstOpenOk: coldOk, errors: coldErrors };
  // polled: B kept failing to open the name (negative lookups) until A created it.
  for (const how of ['open', 'readdir'] as const) {
    const trials: Trial[] = [];
    for (let k = 0; k < TRIALS; k++) {
      const name = `seg.${how}.${k}`;
      const data = randomBytes(64);
      trials.push(await measure(
        () => {
          const tmp = path.join(A!, dir, `.tmp.${how}.${k}`);
          fs.writeFileSync(tmp, data);
          fs.renameSync(tmp, path.join(A!, dir, name));
        },
        () => {
          if (how === 'readdir') return fs.readdirSync(path.join(B!, dir)).includes(name) ? 'new' : 'absent';
          try {
            return readWhole(path.join(B!, dir, name)).equals(data) ? 'new' : 'old';
          } catch (e) {
            if (code(e) === 'ENOENT') return 'absent';
            throw e;
          }
        },
      ));
      await sleep(Math.random() * 300);
    }
    out[how === 'open' ? 'open-after-negative-lookups' : 'readdir-lists-new-name'] = summarize(trials);
  }
  fs.rmSync(path.join(A!, dir), { recursive: true, force: true });
  report('a.new-name', out);
}

/** A unlinks FILE; B polls whether it still exists (the back-pressure handshake). */
async function unlinkVisibility(): Promise<void> {
  const dir = freshDir('unlink');
  const trials: Trial[] = [];
  for (let k = 0; k < TRIALS; k++) {
    publishOnA(dir, randomBytes(16));
    trials.push(await measure(
      () => fs.unlinkSync(path.join(A!, dir, 'FILE')),
      () => (lstatIno(path.join(B!, dir, 'FILE')) === undefined ? 'new' : 'old'),
    ));
    await sleep(Math.random() * 1000);
  }
  // And the other way: FILE absent on B (B polled ENOENT), A creates it by rename.
  const appear: Trial[] = [];
  for (let k = 0; k < TRIALS; k++) {
    try { fs.unlinkSync(path.join(A!, dir, 'FILE')); } catch { /* absent */ }
    appear.push(await measure(
      () => { publishOnA(dir, randomBytes(16)); },
      () => (lstatIno(path.join(B!, dir, 'FILE')) === undefined ? 'absent' : 'new'),
      400,
    ));
    await sleep(Math.random() * 1000);
  }
  fs.rmSync(path.join(A!, dir), { recursive: true, force: true });
  report('a.unlink-and-reappear', { 'unlinked-on-A-still-exists-on-B': summarize(trials), 'created-on-A-after-B-saw-ENOENT': summarize(appear) });
}

/** A rewrites a file in place (pwrite at 0, as a multicast cursor); B reads it. */
async function inPlaceRewrite(): Promise<void> {
  const dir = freshDir('pwrite');
  const fileA = path.join(A!, dir, 'cursor');
  const fileB = path.join(B!, dir, 'cursor');
  const out: Record<string, unknown> = {};
  for (const how of ['open-read-close', 'kept-fd-pread'] as const) {
    let value = 0;
    const record = (n: number) => Buffer.from(String(n).padStart(20, '0') + ' xxxxxxxx\n');
    fs.writeFileSync(fileA, record(value));
    const fdA = fs.openSync(fileA, 'r+');
    const fdB = fs.openSync(fileB, 'r');
    const trials: Trial[] = [];
    for (let k = 0; k < TRIALS; k++) {
      const next = value + 1;
      trials.push(await measure(
        () => { fs.writeSync(fdA, record(next), 0, 30, 0); },
        () => {
          let got: Buffer;
          if (how === 'kept-fd-pread') {
            got = Buffer.alloc(30);
            fs.readSync(fdB, got, 0, 30, 0);
          } else got = readWhole(fileB);
          return got.equals(record(next)) ? 'new' : 'old';
        },
      ));
      value = next;
      await sleep(Math.random() * 1000);
    }
    fs.closeSync(fdA);
    fs.closeSync(fdB);
    out[how] = summarize(trials);
  }
  fs.rmSync(path.join(A!, dir), { recursive: true, force: true });
  report('a.in-place-rewrite', out);
}

/**
 * B opens FILE and holds the descriptor; A then renames another file over
 * FILE (so the old inode loses its last name). Can B still read, and fstat,
 * what it opened? filebus's rule 1 ("an open descriptor always holds a whole
 * chunk") and the lossy consumer's kept descriptor depend on it.
 */
async function openDescriptorAfterReplace(): Promise<void> {
  const dir = freshDir('heldfd');
  const out: Record<string, number> = {};
  const bump = (k: string) => { out[k] = (out[k] ?? 0) + 1; };
  for (let k = 0; k < TRIALS; k++) {
    const old = randomBytes(200_000);
    publishOnA(dir, old);
    await sleep(Math.random() * 50);
    let fd: number;
    try {
      fd = fs.openSync(path.join(B!, dir, 'FILE'), 'r');
    } catch (e) {
      bump(`open:${code(e)}`);
      continue;
    }
    let before: bigint;
    try {
      before = fs.fstatSync(fd, { bigint: true }).ino;
    } catch (e) {
      bump(`fstat-right-after-open:${code(e)}`);
      try { fs.closeSync(fd); } catch { /* as good as closed */ }
      continue;
    }
    publishOnA(dir, randomBytes(200_000));
    await sleep(20);
    try {
      const st = fs.fstatSync(fd, { bigint: true });
      bump(st.ino === before ? 'fstat:same-inode' : 'fstat:different-inode');
    } catch (e) {
      bump(`fstat:${code(e)}`);
    }
    try {
      const buf = Buffer.alloc(old.length);
      let got = 0;
      while (got < old.length) {
        const n = fs.readSync(fd, buf, got, old.length - got, got);
        if (n === 0) break;
        got += n;
      }
      bump(got === old.length && buf.equals(old) ? 'read:old-content-whole' : `read:short-or-wrong(${got}B)`);
    } catch (e) {
      bump(`read:${code(e)}`);
    }
    try {
      fs.closeSync(fd);
    } catch (e) {
      bump(`close:${code(e)}`);
    }
  }
  fs.rmSync(path.join(A!, dir), { recursive: true, force: true });
  report('a.descriptor-opened-on-B-then-replaced-on-A', { trials: TRIALS, ...out });
}

// (b) flock -------------------------------------------------------------------

function openRw(file: string): number {
  return fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o666);
}

function tryLock(fd: number, kind: 'exnb' | 'shnb'): boolean {
  try {
    flockSync(fd, kind);
    return true;
  } catch (e) {
    if (code(e) === 'EAGAIN' || code(e) === 'EWOULDBLOCK') return false;
    throw e;
  }
}

async function flockProbe(): Promise<void> {
  const dir = freshDir('flock');
  const out: Record<string, unknown> = {};
  const fdA = openRw(path.join(A!, dir, 'L'));
  const fdB = openRw(path.join(B!, dir, 'L'));
  flockSync(fdA, 'ex');
  out['A holds ex: B exnb blocked'] = !tryLock(fdB, 'exnb');
  out['A holds ex: B shnb blocked'] = !tryLock(fdB, 'shnb');
  const t0 = now();
  flockSync(fdA, 'un');
  let t1 = -1;
  while (now() - t0 < TIMEOUT_MS) if (tryLock(fdB, 'exnb')) { t1 = now() - t0; break; }
  out['A unlocks: B exnb succeeds after ms'] = Number(t1.toFixed(2));
  out['B holds ex: A exnb blocked'] = !tryLock(fdA, 'exnb');
  // Blocking wait on A (thread pool, like FlockLock.acquire) woken by B's unlock.
  const wakes: number[] = [];
  for (let k = 0; k < 5; k++) {
    const granted = new Promise<number>((resolve, reject) => flock(fdA, 'ex', (e) => (e ? reject(e) : resolve(now()))));
    await sleep(100);
    const released = now();
    flockSync(fdB, 'un');
    wakes.push(Number(((await granted) - released).toFixed(2)));
    flockSync(fdA, 'un');
    flockSync(fdB, 'ex');
  }
  out['A blocked in flock(ex): granted after B unlocks, ms'] = wakes;
  flockSync(fdB, 'un');
  // Two descriptors on one mount exclude each other too.
  const fdA2 = openRw(path.join(A!, dir, 'L'));
  flockSync(fdA, 'ex');
  out['same mount, second descriptor exnb blocked'] = !tryLock(fdA2, 'exnb');
  flockSync(fdA, 'un');
  fs.closeSync(fdA2);

  // A process holding the lock through B is SIGKILLed: when can A lock?
  const kills: Array<number | string> = [];
  for (let k = 0; k < 5; k++) {
    const holder = spawn(process.execPath, ['-e', `
      const fs = require('node:fs'); const { flockSync } = require(${JSON.stringify(require_resolve('fs-ext'))});
      const fd = fs.openSync(${JSON.stringify(path.join(B!, dir, 'L'))}, 'r+'); flockSync(fd, 'ex');
      process.stdout.write('locked\\n'); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      holder.stdout!.once('data', () => resolve());
      holder.once('exit', () => reject(new Error('holder exited early')));
    });
    if (tryLock(fdA, 'exnb')) { kills.push('not-exclusive'); flockSync(fdA, 'un'); holder.kill('SIGKILL'); continue; }
    const exited = new Promise((r) => holder.once('exit', r));
    const t = now();
    holder.kill('SIGKILL');
    let got: number | string = 'timeout';
    while (now() - t < TIMEOUT_MS) {
      if (tryLock(fdA, 'exnb')) { got = Number((now() - t).toFixed(2)); break; }
      await sleep(1);
    }
    kills.push(got);
    await exited;
    try { flockSync(fdA, 'un'); } catch { /* not held */ }
  }
  out['holder on B SIGKILLed: A exnb succeeds after ms'] = kills;
  // Unlink-and-recreate of the lock file through A while B holds the old one: two holders.
  fs.closeSync(fdA);
  fs.closeSync(fdB);
  fs.rmSync(path.join(A!, dir), { recursive: true, force: true });
  report('b.flock', out);
}

function require_resolve(name: string): string {
  return path.resolve('node_modules', name);
}

// (c) hard links ----------------------------------------------------------------

async function linkProbe(): Promise<void> {
  const dir = freshDir('link');
  const out: Record<string, unknown> = {};
  const seg = path.join(A!, dir, 'seg.1');
  const data = randomBytes(1000);
  fs.writeFileSync(seg, data);
  try {
    fs.linkSync(seg, path.join(A!, dir, '.tmp.link'));
    fs.renameSync(path.join(A!, dir, '.tmp.link'), path.join(A!, dir, 'FILE'));
    const sa = fs.lstatSync(seg, { bigint: true });
    const sf = fs.lstatSync(path.join(A!, dir, 'FILE'), { bigint: true });
    out['link(2) works'] = true;
    out['nlink after link'] = Number(sa.nlink);
    out['same inode through A'] = sa.ino === sf.ino;
    const fb = fs.lstatSync(path.join(B!, dir, 'FILE'), { bigint: true });
    out['same inode through B'] = fb.ino === sa.ino;
    out['B reads the segment bytes at FILE'] = readWhole(path.join(B!, dir, 'FILE')).equals(data);
    // Re-link FILE to a second segment: what does B see, and how soon?
    const seg2 = path.join(A!, dir, 'seg.2');
    const data2 = randomBytes(1000);
    fs.writeFileSync(seg2, data2);
    readWhole(path.join(B!, dir, 'FILE'));
    const t = await measure(() => {
      fs.linkSync(seg2, path.join(A!, dir, '.tmp.link2'));
      fs.renameSync(path.join(A!, dir, '.tmp.link2'), path.join(A!, dir, 'FILE'));
    }, () => (readWhole(path.join(B!, dir, 'FILE')).equals(data2) ? 'new' : 'old'));
    out['relink FILE to seg.2: B reads it after ms'] = t.ms === 'timeout' ? t.ms : Number(t.ms.toFixed(1));
    out['relink: errors while polling'] = t.errors;
    // Unlink the old segment while FILE (the other name) remains.
    fs.unlinkSync(seg2);
    out['FILE still readable on B after its segment name is unlinked'] = readWhole(path.join(B!, dir, 'FILE')).equals(data2);
  } catch (e) {
    out['link(2) works'] = false;
    out.error = code(e);
  }
  fs.rmSync(path.join(A!, dir), { recursive: true, force: true });
  report('c.hard-links', out);
}

// (d) inotify -------------------------------------------------------------------

async function watchProbe(): Promise<void> {
  const dir = freshDir('watch');
  const out: Record<string, unknown> = {};
  const events = { A: [] as string[], B: [] as string[] };
  const wa = fs.watch(path.join(A!, dir), (type, name) => events.A.push(`${type}:${name}`));
  const wb = fs.watch(path.join(B!, dir), (type, name) => events.B.push(`${type}:${name}`));
  await sleep(200);
  // Changes made through A.
  for (let k = 0; k < 5; k++) publishOnA(dir, randomBytes(10));
  fs.mkdirSync(path.join(A!, dir, 'sub'));
  await sleep(2000);
  out['events on A from A (5 renames over FILE, 1 mkdir)'] = events.A.length;
  out['events on A sample'] = events.A.slice(0, 6);
  out['events on B from A'] = events.B.length;
  events.A.length = 0;
  events.B.length = 0;
  // Changes made through B.
  fs.writeFileSync(path.join(B!, dir, 'fromB'), 'x');
  await sleep(2000);
  out['events on B from B (1 create)'] = events.B.length;
  out['events on A from B'] = events.A.length;
  wa.close();
  wb.close();
  fs.rmSync(path.join(A!, dir), { recursive: true, force: true });
  report('d.inotify', out);
}

// (e) statfs --------------------------------------------------------------------

async function statfsProbe(): Promise<void> {
  const out: Record<string, unknown> = {};
  for (const [name, m] of [['A', A!], ['B', B!], ['/tmp', '/tmp']] as const) {
    const st = fs.statfsSync(m);
    const mount = fs.readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')).filter((f) => f[1] === m)[0];
    out[name] = { 'statfs.type': st.type, hex: `0x${st.type.toString(16)}`, bsize: st.bsize, '/proc/mounts type': mount?.[2] ?? null };
  }
  report('e.statfs', out);
}

// (f) mkdir and O_EXCL atomicity across mounts ---------------------------------------

async function atomicityProbe(): Promise<void> {
  const dir = freshDir('mkdirlock');
  const out: Record<string, unknown> = {};
  for (const kind of ['mkdir', 'open-excl'] as const) {
    const perWorker = 150;
    const worker = (mount: string, id: string) => spawn(process.execPath, ['-e', `
      const fs = require('node:fs'); const path = require('node:path');
      const lock = path.join(${JSON.stringify(mount)}, ${JSON.stringify(dir)}, 'LOCK');
      const guard = path.join(${JSON.stringify(A!)}, ${JSON.stringify(dir)}, 'holder');
      let got = 0, violations = 0, contended = 0, errors = {};
      const take = () => { try { ${kind === 'mkdir' ? 'fs.mkdirSync(lock)' : 'fs.closeSync(fs.openSync(lock, "wx"))'}; return true; }
        catch (e) { if (e.code === 'EEXIST') { contended++; return false; } errors[e.code] = (errors[e.code] || 0) + 1; return false; } };
      const drop = () => { ${kind === 'mkdir' ? 'fs.rmdirSync(lock)' : 'fs.unlinkSync(lock)'}; };
      const deadline = Date.now() + 60000;
      while (got < ${perWorker} && Date.now() < deadline) {
        if (!take()) continue;
        // Critical section: the guard file must not exist (O_EXCL through one mount, so one judge).
        try { fs.closeSync(fs.openSync(guard, 'wx')); } catch (e) { violations++; }
        for (let i = 0; i < 200; i++) {}
        try { fs.unlinkSync(guard); } catch {}
        drop();
        got++;
      }
      process.stdout.write(JSON.stringify({ id: ${JSON.stringify(id)}, got, violations, contended, errors }));
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    const t = now();
    const procs = [worker(A!, 'A1'), worker(A!, 'A2'), worker(B!, 'B1'), worker(B!, 'B2')];
    const reports = await Promise.all(procs.map((p) => new Promise<Record<string, unknown>>((resolve) => {
      let s = '';
      p.stdout!.on('data', (d) => { s += d; });
      p.on('close', () => resolve(s ? JSON.parse(s) : { error: 'no output' }));
    })));
    out[kind] = { seconds: Number(((now() - t) / 1000).toFixed(1)), workers: reports };
  }
  fs.rmSync(path.join(A!, dir), { recursive: true, force: true });
  report('f.atomic-create', out);
}

const probes: Record<string, () => Promise<void>> = {
  rename: renameVisibility,
  newname: newNameVisibility,
  unlink: unlinkVisibility,
  pwrite: inPlaceRewrite,
  heldfd: openDescriptorAfterReplace,
  flock: flockProbe,
  link: linkProbe,
  watch: watchProbe,
  statfs: statfsProbe,
  atomic: atomicityProbe,
};

for (const [name, probe] of Object.entries(probes)) {
  if (ONLY && !ONLY.includes(name)) continue;
  try {
    await probe();
  } catch (e) {
    report(`${name}.FAILED`, String((e as Error).stack ?? e));
  }
}
if (JSON_OUT) fs.writeFileSync(JSON_OUT, JSON.stringify(results, null, 2) + '\n');
