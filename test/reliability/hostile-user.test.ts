/**
 * Another user on the same machine (issue 13, points 7, 8 and 9). The bus
 * belongs to root and lives in a sticky world-writable directory like /tmp;
 * a real second user, filebus-other, plants names beside it first (symlinks
 * to a root-only secret, files, directories, FIFOs, a huge sparse file,
 * taken chunks, cursors, registrations, lock files) or flocks what it can
 * open. filebus must never print the secret or a planted chunk, never stall
 * or end on a planted name, and where a planted name stands in its way,
 * refuse with one line naming it and its owner (exit 2).
 *
 * The machine allows symlinks to be followed in sticky directories
 * (fs.protected_symlinks=0), as the issue assumes. Needs root: it creates
 * the user (useradd -M) when missing, and runs its actions through setpriv.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers/cli.js';
import { startProcess, startFilebus, runFilebus, killAll, type Proc } from '../helpers/procs.js';
import { until } from '../helpers/wait.js';
import { segmentName, ringEntryPath } from '../helpers/bus-layout.js';
import { sigkill, oneLineError, writeResults } from '../helpers/reliability.js';

const OTHER = 'filebus-other';
const SECRET = 'TOP-SECRET-root-only-bytes\n';
const BLOCK = 4096;
const dirs: string[] = [];
const outcomes: Record<string, string> = {};
let other: { uid: number; gid: number };

/** The second user, created when missing (root only); anything else fails plainly. */
function ensureOtherUser(): { uid: number; gid: number } {
  if (process.geteuid?.() !== 0) throw new Error(`these tests run as root: they need a second user (${OTHER}) and setpriv`);
  let id = spawnSync('id', ['-u', OTHER], { encoding: 'utf8' });
  if (id.status !== 0) {
    const add = spawnSync('useradd', ['-M', '-s', '/usr/sbin/nologin', OTHER], { encoding: 'utf8' });
    if (add.status !== 0) throw new Error(`useradd -M ${OTHER} failed: ${add.stderr}`);
    id = spawnSync('id', ['-u', OTHER], { encoding: 'utf8' });
  }
  const gid = spawnSync('id', ['-g', OTHER], { encoding: 'utf8' });
  return { uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

function otherPrefix(): string[] {
  return ['setpriv', `--reuid=${other.uid}`, `--regid=${other.gid}`, '--clear-groups'];
}

/** Runs a shell command as the other user; it must succeed. */
function asOther(script: string): void {
  const [cmd, ...args] = otherPrefix();
  const r = spawnSync(cmd!, [...args, 'sh', '-c', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`as ${OTHER}: ${script}: exit ${r.status}: ${r.stderr}`);
}

/** Starts `flock FILE sleep` as the other user; resolves true once it holds the lock, false if it could not. */
async function otherHolds(file: string, shared = false): Promise<boolean> {
  const [cmd, ...args] = otherPrefix();
  return new Promise((resolve) => {
    // Killed (with its flock and sleep: the whole group) by killAll after the test.
    const holder = startProcess(cmd!, [...args, 'flock', ...(shared ? ['-s'] : []), '-n', file, 'sh', '-c', 'echo held; exec sleep 600'], { stdout: () => resolve(true) });
    void holder.exited.then(() => resolve(false));
  });
}

interface Scene {
  /** Sticky and writable by every user, like /tmp. */
  shared: string;
  bus: string;
  secret: string;
  input: (name: string, blocks: string) => string;
}

function scene(): Scene {
  const top = tempDir('filebus-hostile-');
  dirs.push(top);
  const shared = path.join(top, 'tmp');
  fs.mkdirSync(shared);
  fs.chmodSync(shared, 0o1777);
  const vault = path.join(top, 'vault');
  fs.mkdirSync(vault, { mode: 0o700 });
  const secret = path.join(vault, 'secret');
  fs.writeFileSync(secret, SECRET, { mode: 0o600 });
  fs.chmodSync(top, 0o755);
  const input = (name: string, blocks: string): string => {
    const p = path.join(vault, name);
    fs.writeFileSync(p, Buffer.concat([...blocks].map((c) => Buffer.alloc(BLOCK, c))));
    return p;
  };
  return { shared, bus: path.join(shared, 'bus'), secret, input };
}

/** The blocks of a consumer's output, as their letters (each chunk is BLOCK bytes of one letter). */
function letters(out: Buffer): string {
  let s = '';
  for (let i = 0; i < out.length; i += BLOCK) {
    const block = out.subarray(i, i + BLOCK);
    s += block.length === BLOCK && block.every((b) => b === block[0]) ? String.fromCharCode(block[0]!) : '?';
  }
  return s;
}

function collecting(args: readonly string[], env?: NodeJS.ProcessEnv): { proc: Proc; out: () => Buffer } {
  const chunks: Buffer[] = [];
  const proc = startFilebus(args, { stdout: (d) => chunks.push(d), ...(env ? { env } : {}) });
  return { proc, out: () => Buffer.concat(chunks) };
}

function refusal(r: { code: number | null; stderr: string; stdout: Buffer }, planted: string, what: RegExp): string {
  const line = oneLineError(r.stderr);
  expect(r.code, line).toBe(2);
  expect(r.stdout.length).toBe(0);
  expect(line).toContain(planted);
  expect(line).toMatch(what);
  return line;
}

const OWNER = new RegExp(`belongs to user ${OTHER}`);

beforeAll(() => {
  other = ensureOtherUser();
});

afterEach(async () => {
  await killAll();
});

afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  writeResults('hostile-user', { cases: Object.keys(outcomes).length, outcomes });
});

describe('planted names in a sticky shared directory (point 9)', () => {
  const plants: Array<[string, (s: Scene, at: string) => string]> = [
    ['a symlink to a root-only file', (s, at) => `ln -s ${s.secret} ${at}`],
    ['a plain file', (_s, at) => `printf INJECTED-BY-ANOTHER-USER > ${at}`],
    ['a directory', (_s, at) => `mkdir ${at}`],
    ['a FIFO', (_s, at) => `mkfifo ${at}`],
    ['a huge sparse file', (_s, at) => `truncate -s 1T ${at}`],
  ];
  it.each(plants)('lossy ring entry planted as %s: the consumer skips it, goes on, and never prints it', async (kind, plant) => {
    const s = scene();
    const lossy = ['--filename', s.bus, '--block-size', String(BLOCK)];
    expect((await runFilebus([...lossy, 'producer'], { stdin: { file: s.input('ready', 'R') } })).code).toBe(0);
    const consumer = collecting([...lossy, 'consumer']);
    await until(() => letters(consumer.out()) === 'R', 'the consumer to print the current chunk', 20_000);
    asOther(plant(s, ringEntryPath(s.bus, '2')));
    const producer = await runFilebus([...lossy, 'producer'], { stdin: { file: s.input('abc', 'ABC') } });
    expect(producer.code, producer.stderr).toBe(0);
    const lastIsC = (): boolean => consumer.out().subarray(-BLOCK).equals(Buffer.alloc(BLOCK, 'C'));
    await until(() => lastIsC() || !consumer.proc.running(), 'the newest chunk, C', 20_000);
    const out = consumer.out();
    expect(out.includes('TOP-SECRET'), 'the secret was printed').toBe(false);
    expect(out.includes('INJECTED'), 'a planted chunk was printed').toBe(false);
    expect(consumer.proc.running(), `consumer stopped: ${consumer.proc.stderr()}`).toBe(true);
    expect(letters(out)).toMatch(/^RA?B?C$/);
    outcomes[`ring ${kind}`] = letters(out);
  });

  it('touch .BUS.<huge number>.recent: it numbers nothing, the next producers run to the end and consumers get their chunks', async () => {
    const s = scene();
    const lossy = ['--filename', s.bus, '--block-size', String(BLOCK)];
    expect((await runFilebus([...lossy, 'producer'], { stdin: { file: s.input('ready', 'R') } })).code).toBe(0);
    const consumer = collecting([...lossy, 'consumer']);
    await until(() => letters(consumer.out()) === 'R', 'the consumer to print the current chunk', 20_000);
    asOther(`touch ${ringEntryPath(s.bus, String(Number.MAX_SAFE_INTEGER))}`);
    for (const [name, blocks] of [['abc', 'ABC'], ['def', 'DEF']] as const) {
      const producer = await runFilebus([...lossy, 'producer'], { stdin: { file: s.input(name, blocks) } });
      expect(producer.code, producer.stderr).toBe(0);
      await until(() => letters(consumer.out()).endsWith(blocks.at(-1)!), `chunk ${blocks.at(-1)}`, 20_000);
    }
    expect(consumer.proc.running()).toBe(true);
    expect(letters(consumer.out())).toMatch(/^RA?B?CD?E?F$/);
    outcomes['ring huge number'] = letters(consumer.out());
  });

  it('FILE planted as a symlink to a root-only file: lossy and back-pressure consumers refuse it with one line and print nothing', async () => {
    const s = scene();
    asOther(`ln -s ${s.secret} ${s.bus}`);
    for (const mode of [[], ['--back-pressure']]) {
      const r = await runFilebus(['--filename', s.bus, ...mode, 'consumer'], { timeoutMs: 10_000 });
      expect(r.stdout.includes('TOP-SECRET'), 'the secret was printed').toBe(false);
      outcomes[`FILE symlink ${mode.join('') || 'lossy'}`] = refusal(r, s.bus, /symbolic link/);
    }
  });

  it('FILE planted as another user\'s file with content: consumers refuse it with one line naming its owner', async () => {
    const s = scene();
    asOther(`printf INJECTED > ${s.bus}`);
    for (const mode of [[], ['--back-pressure']]) {
      const r = await runFilebus(['--filename', s.bus, ...mode, 'consumer'], { timeoutMs: 10_000 });
      outcomes[`FILE planted ${mode.join('') || 'lossy'}`] = refusal(r, s.bus, OWNER);
    }
  });

  const taken = (bus: string): string => path.join(path.dirname(bus), `.${path.basename(bus)}.otherhost.4242.1.deadbeef.taken`);
  it.each([
    ['with content', (at: string) => `printf INJECTED > ${at}`, false],
    ['empty', (at: string) => `: > ${at}`, false],
    ['empty and kept flocked', (at: string) => `: > ${at}`, true],
  ] as const)('a planted .taken file %s: never delivered, never ends the stream, never waited for', async (kind, plant, hold) => {
    const s = scene();
    const bp = ['--filename', s.bus, '--back-pressure', '--block-size', String(BLOCK)];
    asOther(plant(taken(s.bus)));
    if (hold) expect(await otherHolds(taken(s.bus))).toBe(true);
    const consumer = collecting([...bp, 'consumer']);
    const producer = await runFilebus([...bp, 'producer'], { stdin: { file: s.input('abc', 'ABC') } });
    expect(producer.code, producer.stderr).toBe(0);
    await until(() => !consumer.proc.running(), 'the consumer to end on the end marker', 30_000);
    expect((await consumer.proc.exited).code, consumer.proc.stderr()).toBe(0);
    expect(letters(consumer.out())).toBe('ABC');
    outcomes[`.taken ${kind}`] = letters(consumer.out());
  });

  it.each([
    ['a file of theirs, every user may write it, flocked by them', (at: string) => `: > ${at} && chmod 666 ${at}`, true],
    ['a symlink to a file of ours', (at: string) => `ln -s SECRET ${at}`, false],
    ['a named pipe', (at: string) => `mkfifo -m 666 ${at}`, false],
    ['a directory', (at: string) => `mkdir ${at}`, false],
  ] as const)('%s at .BUS.taker (the back-pressure turn): consumers take their own turns; everything is delivered once', async (kind, plant, hold) => {
    const s = scene();
    const bp = ['--filename', s.bus, '--back-pressure', '--block-size', String(BLOCK)];
    const turn = path.join(s.shared, '.bus.taker');
    const secretBefore = fs.readFileSync(s.secret);
    asOther(plant(turn).replace('SECRET', s.secret));
    if (hold) expect(await otherHolds(turn)).toBe(true);
    const consumers = [collecting([...bp, 'consumer']), collecting([...bp, 'consumer'])];
    const producer = await runFilebus([...bp, 'producer'], { stdin: { file: s.input('abcd', 'ABCD') }, timeoutMs: 30_000 });
    expect(producer.code, producer.stderr).toBe(0);
    await until(() => consumers.some((c) => !c.proc.running()), 'a consumer to end on the end marker', 30_000);
    for (const c of consumers) await sigkill(c.proc);
    const got = consumers.map((c) => letters(c.out())).join('');
    expect([...got].sort().join('')).toBe('ABCD');
    expect(fs.readFileSync(s.secret).equals(secretBefore)).toBe(true);
    outcomes[`.taker ${kind}`] = got;
  });

  it.each([['an empty directory', ''], ['a directory with a file in it', ' && touch $0/f']])('%s at .BUS.spare: the back-pressure producer runs without a spare', async (_kind, more) => {
    const s = scene();
    const bp = ['--filename', s.bus, '--back-pressure', '--block-size', String(BLOCK)];
    const spare = path.join(s.shared, '.bus.spare');
    asOther(`mkdir ${spare}${more.replace('$0', spare)}`);
    const consumer = collecting([...bp, 'consumer']);
    const producer = await runFilebus([...bp, 'producer'], { stdin: { file: s.input('many', 'ABCDEFGH') } });
    expect(producer.code, producer.stderr).toBe(0);
    await until(() => !consumer.proc.running(), 'the consumer to end', 30_000);
    expect(letters(consumer.out())).toBe('ABCDEFGH');
    outcomes['spare directory'] = 'ok';
  });

  it('planted FILE.lock-strategy and FILE.lock.d: every process refuses with one line naming the file and its owner', async () => {
    for (const [name, plant] of [['bus.lock-strategy', 'printf "mkdir\\n" >'], ['bus.lock.d', 'mkdir']] as const) {
      const s = scene();
      const planted = path.join(s.shared, name);
      asOther(`${plant} ${planted}`);
      for (const args of [['consumer'], ['--back-pressure', 'consumer'], ['--multicast', 'consumer'], ['producer']]) {
        const r = await runFilebus(['--filename', s.bus, ...args], { stdin: { file: s.input('a', 'A') }, timeoutMs: 10_000 });
        outcomes[`${name} ${args.join(' ')}`] = refusal(r, planted, OWNER);
      }
    }
  });

  it('multicast with --file-mode 0666 (directories writable by all): a garbage cursor, a flocked ghost cursor and a flocked fake registration stop nobody', async () => {
    const s = scene();
    const mc = ['--filename', s.bus, '--multicast', '--file-mode', '0666', '--block-size', String(BLOCK), '--window', '4'];
    expect((await runFilebus([...mc, 'producer'], { stdin: { file: '/dev/null' } })).code).toBe(0);
    const consumers = `${s.bus}.consumers`;
    const producers = `${s.bus}.producers`;
    asOther(`printf garbage > ${consumers}/evil.cursor && printf '00000000000000000001 %s\\n' b38272b5 > ${consumers}/ghost.cursor`
      + ` && printf '{}' > ${producers}/otherhost.4242.deadbeef.producer`);
    expect(await otherHolds(`${consumers}/ghost.cursor`)).toBe(true);
    expect(await otherHolds(`${producers}/otherhost.4242.deadbeef.producer`)).toBe(true);
    const consumer = collecting([...mc, '--from', 'latest', 'consumer']);
    await until(() => fs.readdirSync(consumers).some((n) => n.startsWith('~')) || !consumer.proc.running(), 'the consumer to join', 20_000);
    const producer = await runFilebus([...mc, 'producer'], { stdin: { file: s.input('many', 'ABCDEFGHIJKL') }, timeoutMs: 30_000, onTimeout: 'report' });
    expect(producer.timedOut, 'the producer stalled').toBe(false);
    expect(producer.code, producer.stderr).toBe(0);
    await until(() => !consumer.proc.running(), 'the consumer to end on the end marker', 30_000);
    expect((await consumer.proc.exited).code, consumer.proc.stderr()).toBe(0);
    expect(letters(consumer.out())).toBe('ABCDEFGHIJKL');
    outcomes['multicast planted cursors and registration'] = 'ok';
  });

  it('multicast with --file-mode 0666: a segment replaced by another user\'s, with a checksum that matches its bytes, is never delivered', async () => {
    const s = scene();
    const mc = ['--filename', s.bus, '--multicast', '--file-mode', '0666', '--block-size', String(BLOCK)];
    expect((await runFilebus([...mc, 'producer'], { stdin: { file: s.input('abc', 'ABC') } })).code).toBe(0);
    const segments = `${s.bus}.segments`;
    const second = fs.readdirSync(segments).sort()[1]!;
    const injected = Buffer.from('INJECTED-BY-ANOTHER-USER\n');
    const forged = segmentName(Number(second.slice(0, 20)), injected);
    asOther(`rm -f ${segments}/${second} && printf '${injected.toString().trim()}\\n' > ${segments}/${forged}`);
    const r = await runFilebus([...mc, '--from', 'earliest', 'consumer'], { timeoutMs: 10_000 });
    expect(r.stdout.includes('INJECTED'), 'the forged segment was delivered').toBe(false);
    expect(letters(r.stdout)).toBe('A');
    const line = oneLineError(r.stderr);
    expect(r.code, line).toBe(2);
    expect(line).toContain(forged);
    expect(line).toMatch(OWNER);
    outcomes['forged segment'] = line;
  });

  it('multicast directories planted by another user before first use: refused with one line naming the directory and its owner', async () => {
    for (const name of ['bus.segments', 'bus.consumers', 'bus.producers']) {
      const s = scene();
      const planted = path.join(s.shared, name);
      asOther(`mkdir -m 0777 ${planted}`);
      // Consumers never look at FILE.producers/.
      const roles = name === 'bus.producers' ? ['producer'] : ['consumer', 'producer'];
      for (const args of roles.map((role) => ['--multicast', role])) {
        const r = await runFilebus(['--filename', s.bus, ...args], { stdin: { file: s.input('a', 'A') }, timeoutMs: 10_000 });
        outcomes[`${name} ${args.join(' ')}`] = refusal(r, planted, OWNER);
      }
    }
  });

  it('a read-only user cannot flock FILE.lock or a named cursor: it cannot stall the bus', async () => {
    const s = scene();
    const bp = ['--filename', s.bus, '--back-pressure', '--block-size', String(BLOCK)];
    const firstConsumer = runFilebus([...bp, 'consumer'], { timeoutMs: 20_000 });
    expect((await runFilebus([...bp, 'producer'], { stdin: { file: s.input('a', 'A') }, timeoutMs: 20_000 })).code).toBe(0);
    expect(letters((await firstConsumer).stdout)).toBe('A');
    const holdsLock = await otherHolds(`${s.bus}.lock`, true);
    const consumer = collecting([...bp, 'consumer']);
    const producer = await runFilebus([...bp, 'producer'], { stdin: { file: s.input('bc', 'BC') }, timeoutMs: 20_000, onTimeout: 'report' });
    expect(producer.timedOut, 'the producer stalled on a lock held by another user').toBe(false);
    await until(() => !consumer.proc.running(), 'the consumer to end', 20_000);
    expect(letters(consumer.out())).toBe('BC');
    expect(holdsLock).toBe(false);

    const bus2 = path.join(s.shared, 'mc');
    const mc = ['--filename', bus2, '--multicast', '--block-size', String(BLOCK)];
    const first = collecting([...mc, '--name', 'alice', 'consumer']);
    await until(() => fs.existsSync(`${bus2}.consumers/alice.cursor`), 'alice to register', 20_000);
    expect((await runFilebus([...mc, 'producer'], { stdin: { file: s.input('a', 'A') } })).code).toBe(0);
    await until(() => !first.proc.running(), 'alice to end', 20_000);
    const holdsCursor = await otherHolds(`${bus2}.consumers/alice.cursor`, true);
    const again = collecting([...mc, '--name', 'alice', 'consumer']);
    expect((await runFilebus([...mc, 'producer'], { stdin: { file: s.input('b', 'B') }, timeoutMs: 20_000 })).code).toBe(0);
    await until(() => !again.proc.running(), 'alice to end again', 20_000);
    expect((await again.proc.exited).code, again.proc.stderr()).toBe(0);
    expect(letters(again.out())).toBe('B');
    expect(holdsCursor).toBe(false);
    outcomes['flock by a read-only user'] = 'refused by the kernel';
  });
});

describe('a lock file every user may read', () => {
  it('FILE.lock left 0644 (by the reference, or an older filebus): the next process takes the \'other\' bits away, and a read-only user cannot flock it', async () => {
    const s = scene();
    const lock = `${s.bus}.lock`;
    fs.writeFileSync(lock, '');
    fs.chmodSync(lock, 0o644);
    const bp = ['--filename', s.bus, '--back-pressure', '--block-size', String(BLOCK)];
    const consumer = runFilebus([...bp, 'consumer'], { timeoutMs: 20_000 });
    expect((await runFilebus([...bp, 'producer'], { stdin: { file: s.input('a', 'A') }, timeoutMs: 20_000 })).code).toBe(0);
    expect(letters((await consumer).stdout)).toBe('A');
    expect((fs.statSync(lock).mode & 0o777).toString(8)).toBe('640');
    expect(await otherHolds(lock, true)).toBe(false);
    outcomes['0644 lock file'] = 'made 0640';
  });
});

describe('names planted while a bus runs', () => {
  async function betweenChunks(extra: readonly string[], plant: (s: Scene) => string, planted: (s: Scene) => string): Promise<void> {
    const s = scene();
    const bp = ['--filename', s.bus, '--back-pressure', '--block-size', String(BLOCK), ...extra];
    const fifo = path.join(path.dirname(s.secret), 'feed');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const feed = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    try {
      const consumer = collecting([...bp, 'consumer']);
      const producer = startFilebus([...bp, 'producer'], { stdin: { file: fifo } });
      fs.writeSync(feed, Buffer.alloc(BLOCK, 'A'));
      await until(() => letters(consumer.out()) === 'A' && !fs.existsSync(s.bus), 'chunk A to be delivered', 20_000);
      asOther(plant(s));
      fs.writeSync(feed, Buffer.alloc(BLOCK, 'B'));
      await until(() => !producer.running(), 'the producer to stop', 30_000);
      const line = oneLineError(producer.stderr());
      expect((await producer.exited).code, line).toBe(2);
      expect(line).toContain(planted(s));
      expect(line).toMatch(OWNER);
      expect(consumer.out().includes('INJECTED'), 'a planted chunk was delivered').toBe(false);
      outcomes[`planted mid-stream ${extra.join(' ') || 'flock'}`] = line;
    } finally {
      fs.closeSync(feed);
    }
  }

  it('back-pressure: FILE created by another user between chunks stops the producer with one line naming it (it used to wait for ever), and is never delivered', async () => {
    await betweenChunks([], (s) => `printf INJECTED > ${s.bus}`, (s) => s.bus);
  });

  it('back-pressure on a network file system: FILE created by another user between chunks is refused by the consumer with one line naming it, and never delivered', async () => {
    const s = scene();
    // FILEBUS_NETWORK_FS=1: the consumer reads FILE through a claim link (wire/server-view.ts), as on NFS or GlusterFS.
    const bp = ['--filename', s.bus, '--back-pressure', '--block-size', String(BLOCK)];
    const consumer = collecting([...bp, 'consumer'], { FILEBUS_NETWORK_FS: '1' });
    const first = await runFilebus([...bp, 'producer'], { stdin: { file: s.input('a', 'A') } });
    expect(first.code, first.stderr).toBe(0);
    // The producer's end marker ends the consumer: run a second consumer for the planted FILE.
    await until(() => !consumer.proc.running(), 'the consumer to end on the end marker', 30_000);
    expect(letters(consumer.out())).toBe('A');
    const next = collecting([...bp, 'consumer'], { FILEBUS_NETWORK_FS: '1' });
    await until(() => next.proc.running(), 'the next consumer to start', 10_000);
    await new Promise((r) => setTimeout(r, 1500));
    asOther(`printf INJECTED > ${s.bus}`);
    await until(() => !next.proc.running(), 'the consumer to refuse the planted FILE', 30_000);
    const line = oneLineError(next.proc.stderr());
    expect((await next.proc.exited).code, line).toBe(2);
    expect(line).toContain(s.bus);
    expect(line).toMatch(OWNER);
    expect(next.out().includes('INJECTED'), 'a planted chunk was delivered').toBe(false);
    outcomes['planted FILE, network view'] = line;
  });

  it('--lock mkdir: FILE.lock.d made by another user while the lock is free is refused with one line, not waited on or taken over', async () => {
    await betweenChunks(['--lock', 'mkdir'], (s) => `until mkdir ${s.bus}.lock.d 2>/dev/null; do :; done`, (s) => `${s.bus}.lock.d`);
  });
});

describe('split lock (point 8)', () => {
  it('FILE.lock planted by another user before first use: producers and consumers of every mode refuse with one line naming it', async () => {
    const s = scene();
    asOther(`: > ${s.bus}.lock && chmod 0666 ${s.bus}.lock`);
    for (const args of [['producer'], ['consumer'], ['--back-pressure', 'producer'], ['--back-pressure', 'consumer'], ['--multicast', 'producer'], ['--multicast', 'consumer']]) {
      const r = await runFilebus(['--filename', s.bus, ...args], { stdin: { file: s.input('a', 'A') }, timeoutMs: 10_000 });
      outcomes[`FILE.lock planted ${args.join(' ')}`] = refusal(r, `${s.bus}.lock`, OWNER);
    }
  });
});

describe('a directory every user may write without the sticky bit', () => {
  it('is refused with one line naming it and what to do; nothing is created there', async () => {
    const s = scene();
    const open = path.join(path.dirname(s.shared), 'open');
    fs.mkdirSync(open);
    fs.chmodSync(open, 0o777);
    for (const bus of [path.join(open, 'bus'), path.join(open, 'new', 'bus')]) {
      for (const args of [['producer'], ['--multicast', 'consumer'], ['--file-mode', '0600', 'producer']]) {
        const r = await runFilebus(['--filename', bus, ...args], { stdin: { file: s.input('a', 'A') }, timeoutMs: 10_000 });
        // A consumer creates no directory, so a missing one is refused first, as missing.
        const missingForConsumer = args.includes('consumer') && !fs.existsSync(path.dirname(bus));
        outcomes[`non-sticky ${args.join(' ')}`] = refusal(r, open, missingForConsumer ? /does not exist \(a consumer creates none/ : /chmod \+t/);
      }
    }
    expect(fs.readdirSync(open)).toEqual([]);
  });
});

describe('chmod through a symlink (point 7)', () => {
  /**
   * Root creates a directory with a mode (what --file-mode does for every
   * directory of a bus) in a directory the other user can write, 10,000
   * times, while the other user swaps a symlink to a root-only 0600 file in
   * right after each mkdir. The file's mode must never change.
   */
  it('creating directories with --file-mode while another user swaps in symlinks never changes the mode of the target', async () => {
    const s = scene();
    const race = path.join(path.dirname(s.shared), 'race');
    fs.mkdirSync(race);
    fs.chmodSync(race, 0o777);
    const target = path.join(race, 'd');
    // renameat2(RENAME_EXCHANGE) swaps a symlink and the new directory in one
    // step, so the swap lands between a mkdir and a chmod often enough.
    const swapper = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
d, secret = sys.argv[1], sys.argv[2]
s = d + '.link'
while True:
    if not os.path.islink(s):
        try:
            os.rmdir(s)
        except OSError:
            pass
        try:
            os.symlink(secret, s)
        except OSError:
            pass
    libc.renameat2(-100, s.encode(), -100, d.encode(), 2)
`;
    const [cmd, ...args] = otherPrefix();
    const attacker = startProcess(cmd!, [...args, '/usr/bin/python3', '-c', swapper, target, s.secret], { stdout: 'ignore' });
    const permissions = path.join(ROOT, 'dist/util/permissions.js');
    const victim = `
const fs = require('node:fs');
import(${JSON.stringify(permissions)}).then(({ createDirectory }) => {
  let made = 0;
  for (let i = 0; i < 10000; i++) {
    try { createDirectory(${JSON.stringify(target)}, 0o644); made++; } catch {}
    if ((fs.statSync(${JSON.stringify(s.secret)}).mode & 0o777) !== 0o600) break;
    try { fs.rmdirSync(${JSON.stringify(target)}); } catch { try { fs.unlinkSync(${JSON.stringify(target)}); } catch {} }
  }
  console.log(made);
});`;
    const r = spawnSync(process.execPath, ['-e', victim], { encoding: 'utf8', timeout: 300_000 });
    attacker.killGroup();
    expect(r.status, r.stderr).toBe(0);
    const mode = fs.statSync(s.secret).mode & 0o7777;
    outcomes['chmod race'] = `${r.stdout.trim()} directories made; target mode ${mode.toString(8)}`;
    expect(mode.toString(8)).toBe('600');
  });
});
