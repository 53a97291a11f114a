/**
 * `--watch auto|events|poll` on a local directory: what each sets up (an
 * inotify descriptor or none), what `-v` says, that FILEBUS_NETWORK_FS=1
 * makes `auto` poll as on a network file system, and the usage errors.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Consumer, FilebusError, Producer, type BusInfo } from '../../src/index.js';
import { startFilebus, runFilebus } from '../helpers/procs.js';
import { within, until } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { listTree } from '../helpers/bus-layout.js';

const tmp = useBusDir('filebus-watch-');

function hasInotify(pid: number): boolean {
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:inotify') return true;
    } catch { /* closed meanwhile */ }
  }
  return false;
}

/**
 * Starts a back-pressure consumer with `flags`, feeds it one chunk, and
 * returns whether it had an inotify descriptor once it had delivered it,
 * with its -v lines.
 */
async function consumerSetup(flags: string[], env: NodeJS.ProcessEnv = {}): Promise<{ inotify: boolean; log: string }> {
  const consumer = startFilebus(['-v', '--filename', tmp.bus, '--back-pressure', ...flags, 'consumer'], { stdin: 'ignore', env });
  await until(() => consumer.stderr().includes('watching:'), 'the consumer to open the bus', 15_000);
  const producer = startFilebus(['--filename', tmp.bus, '--back-pressure', 'producer'], { stdin: 'pipe', env });
  producer.child.stdin!.write('one chunk\n');
  // Delivering a chunk means the consumer is in its loop, its watcher (if any) set up.
  await until(() => consumer.stdout().toString() === 'one chunk\n', 'the chunk', 15_000);
  const inotify = hasInotify(consumer.pid);
  producer.child.stdin!.end();
  expect((await within(producer.done, 15_000, 'the producer')).code, producer.stderr()).toBe(0);
  await within(consumer.done, 15_000, 'the consumer to take the end marker');
  return { inotify, log: consumer.stderr() };
}

describe('--watch', () => {
  it('auto on a local file system watches with events, and says so with -v', async () => {
    const { inotify, log } = await consumerSetup([]);
    expect(inotify).toBe(true);
    expect(log).toMatch(/bus on [^\n,;]+; watching: file system events; lock: flock\n/);
    expect(log).not.toMatch(/network/);
  });

  it('poll sets up no watch at all and polls every --sleep-interval', async () => {
    const { inotify, log } = await consumerSetup(['--watch', 'poll', '--sleep-interval', '0.02']);
    expect(inotify).toBe(false);
    expect(log).toMatch(/watching: polling every 0\.02 s; lock: flock\n/);
  });

  it('--no-file-monitoring still means poll', async () => {
    const { inotify, log } = await consumerSetup(['--no-file-monitoring']);
    expect(inotify).toBe(false);
    expect(log).toMatch(/watching: polling every 0\.1 s/);
  });

  it('auto polls where the bus counts as a network file system (FILEBUS_NETWORK_FS=1), and -v says what that needs', async () => {
    const { inotify, log } = await consumerSetup([], { FILEBUS_NETWORK_FS: '1' });
    expect(inotify).toBe(false);
    expect(log).toMatch(/bus on [^\n]*a network file system; watching: polling every 0\.1 s; lock: flock\n/);
    expect(log).toMatch(/docs\/distributed\.md/);
  });

  it('events forces events even on a network file system, with a warning under -v', async () => {
    const { inotify, log } = await consumerSetup(['--watch', 'events'], { FILEBUS_NETWORK_FS: '1' });
    expect(inotify).toBe(true);
    expect(log).toMatch(/watching: file system events/);
    expect(log).toMatch(/warning: --watch events on a network file system/);
  });
});

describe('bad --watch and --lock values exit 2 with one line, touching nothing', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['--watch bogus', ['--watch', 'bogus', 'consumer'], /--watch must be auto, events, chokidar or poll, got 'bogus'/],
    ['--watch without a value', ['consumer', '--watch'], /watch/],
    ['--watch given twice', ['--watch', 'poll', '--watch', 'events', 'consumer'], /--watch may be given only once/],
    ['--no-file-monitoring --watch events', ['--no-file-monitoring', '--watch', 'events', 'consumer'], /--no-file-monitoring means --watch poll; it contradicts --watch events/],
    ['--lock bogus', ['--lock', 'bogus', 'producer'], /--lock must be flock or mkdir, got 'bogus'/],
    ['--lock without a value', ['producer', '--lock'], /lock/],
    ['--lock=FLOCK (case matters)', ['--lock=FLOCK', 'producer'], /--lock must be flock or mkdir, got 'FLOCK'/],
  ];
  for (const [name, args, problem] of cases) {
    it(name, async () => {
      const before = listTree(tmp.dir);
      const r = await runFilebus(['--filename', tmp.bus, ...args], { input: 'nothing\n' });
      expect({ code: r.code, signal: r.signal }).toEqual({ code: 2, signal: null });
      expect(r.stderr).toMatch(/^filebus: [^\n]+\n$/);
      expect(r.stderr).toMatch(problem);
      expect(r.stdout.length).toBe(0);
      expect(listTree(tmp.dir)).toEqual(before);
    });
  }

  it('--no-file-monitoring --watch poll is consistent and accepted', async () => {
    const r = await runFilebus(['--filename', tmp.bus, '--no-file-monitoring', '--watch', 'poll', 'producer'], { input: 'fine\n' });
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(tmp.bus, 'utf8')).toBe('fine\n');
  });
});

describe('library options watch and lock', () => {
  for (const Class of [Producer, Consumer]) {
    it(`new ${Class.name} rejects bad watch and lock values, and watch that contradicts fileMonitoring, with ERR_FILEBUS_INVALID_OPTION`, () => {
      const bad: Array<Record<string, unknown>> = [{ watch: 'sometimes' }, { lock: 'fcntl' }, { fileMonitoring: false, watch: 'events' }, { fileMonitoring: false, watch: 'auto' }];
      for (const extra of bad) {
        let caught: unknown;
        try {
          new Class({ filename: tmp.bus, ...extra } as never);
        } catch (error) {
          caught = error;
        }
        expect(caught, JSON.stringify(extra)).toBeInstanceOf(FilebusError);
        expect((caught as FilebusError).code).toBe('ERR_FILEBUS_INVALID_OPTION');
      }
      expect(fs.readdirSync(tmp.dir)).toEqual([]);
    });
  }

  it("Producer and Consumer emit 'bus' with how the bus is watched and locked", async () => {
    const infos: BusInfo[] = [];
    const consumer = new Consumer({ filename: tmp.bus, mode: 'back-pressure', watch: 'poll', lock: 'mkdir', sleepInterval: 0.01 });
    consumer.on('bus', (info: BusInfo) => infos.push(info));
    const producer = new Producer({ filename: tmp.bus, mode: 'back-pressure', watch: 'events', lock: 'mkdir' });
    producer.on('bus', (info: BusInfo) => infos.push(info));
    producer.end(Buffer.from('hello'));
    const chunks: Buffer[] = [];
    for await (const chunk of consumer) chunks.push(chunk);
    await producer.close();
    expect(Buffer.concat(chunks).toString()).toBe('hello');
    expect(infos.map((i) => [i.watching, i.lock]).sort()).toEqual([['events', 'mkdir'], ['poll', 'mkdir']]);
    for (const info of infos) {
      expect(info.fileSystem.network).toBe(false);
      expect(typeof info.fileSystem.name).toBe('string');
    }
  });
});

describe('--watch chokidar', () => {
  it('lossy: a consumer woken by chokidar gets every chunk of a slow producer, in order', async () => {
    const producer = startFilebus(['--filename', tmp.bus, '-vv', 'producer'], { stdin: 'pipe' });
    const lines = Array.from({ length: 20 }, (_, i) => `line ${i}\n`);
    const publish = async (i: number): Promise<void> => {
      producer.child.stdin!.write(lines[i]!);
      await until(() => (producer.stderr().match(/published chunk/g) ?? []).length > i, `chunk ${i}`, 10_000);
    };
    // The consumer starts with the current chunk: once it has printed line 0 it is watching.
    await publish(0);
    const consumer = startFilebus(['--filename', tmp.bus, '--watch', 'chokidar', 'consumer'], { stdin: 'ignore' });
    await until(() => consumer.stdout().toString() === lines[0], 'the current chunk', 15_000);
    for (let i = 1; i < lines.length; i++) {
      await publish(i);
      await new Promise((r) => setTimeout(r, 20));
    }
    await until(() => consumer.stdout().toString() === lines.join(''), 'all 20 lines', 15_000);
    producer.child.stdin!.end();
    expect(await within(producer.done, 15_000, 'the producer')).toEqual({ code: 0, signal: null });
    expect(consumer.running()).toBe(true);
    consumer.child.kill('SIGKILL');
    await consumer.done;
    expect(consumer.stdout().toString()).toBe(lines.join(''));
  }, 60_000);

  it('back-pressure: 2 MiB through a chokidar-woken consumer, byte for byte', async () => {
    const data = Buffer.alloc(2 * 1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 11)) & 0xff;
    const input = path.join(tmp.dir, 'input');
    fs.writeFileSync(input, data);
    const flags = ['--filename', tmp.bus, '--back-pressure', '--watch', 'chokidar', '--block-size', '65536'];
    const consumer = startFilebus([...flags, 'consumer'], { stdin: 'ignore' });
    const producer = await runFilebus([...flags, 'producer'], { stdin: { file: input } });
    expect(producer).toMatchObject({ code: 0, signal: null, stderr: '' });
    expect(await within(consumer.done, 30_000, 'the consumer')).toEqual({ code: 0, signal: null });
    expect(consumer.stdout().equals(data)).toBe(true);
  }, 60_000);
});
