/**
 * The two lock strategies on the GlusterFS volume: mixing them on one bus
 * is refused across hosts, and a consumer on B killed while it holds the
 * lock does not wedge the bus for host A (flock: the brick drops the lock
 * with the dead client's descriptor; mkdir: the lock directory goes stale
 * after MKDIR_STALE_MS and is taken over). Prints the time to recovery.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MKDIR_STALE_MS, MKDIR_UPDATE_MS } from '../../src/lock/mkdir-lock.js';
import { startFilebus, runFilebus, killAll } from '../helpers/procs.js';
import { within, until } from '../helpers/wait.js';
import { lockState } from '../helpers/bus-layout.js';
import { mountConfig, mounts, sleep } from './harness.js';

const m = mounts();
const config = mountConfig();
const MiB = 1024 * 1024;

let counter = 0;
function newBus(): { A: string; B: string } {
  const name = `locks-${process.pid}-${Date.now()}-${counter++}`;
  fs.mkdirSync(path.join(m!.A, name));
  cleanups.push(() => fs.rmSync(path.join(m!.A, name), { recursive: true, force: true }));
  return { A: path.join(m!.A, name, 'bus'), B: path.join(m!.B, name, 'bus') };
}
const cleanups: Array<() => void> = [];

/** Whether some process holds the bus lock, looked at through mount A. */
function lockHeld(busOnA: string, lock: 'flock' | 'mkdir'): boolean {
  if (lock === 'mkdir') return fs.existsSync(`${busOnA}.lock.d`);
  return lockState(`${busOnA}.lock`) === 'held';
}

describe.skipIf(!m)(`lock strategies across two GlusterFS mounts (${config})`, () => {
  afterEach(async () => {
    await killAll();
    for (const c of cleanups.splice(0)) c();
  });

  it('a bus locked with mkdir on A is refused by flock processes on B, and a flock bus on A by mkdir processes on B: exit 2, one line', async () => {
    const mkdirBus = newBus();
    const made = await runFilebus(['--filename', mkdirBus.A, '--lock', 'mkdir', 'producer'], { input: 'a chunk' });
    expect(made.code, made.stderr).toBe(0);
    for (const args of [['producer'], ['consumer'], ['--back-pressure', 'consumer'], ['--multicast', 'consumer']]) {
      const refused = await runFilebus(['--filename', mkdirBus.B, ...args], { input: 'more' });
      expect(refused.code, args.join(' ')).toBe(2);
      expect(refused.stderr).toMatch(/^filebus: .*locked with --lock mkdir.*\n$/);
    }

    const flockBus = newBus();
    const made2 = await runFilebus(['--filename', flockBus.A, 'producer'], { input: 'a chunk' });
    expect(made2.code, made2.stderr).toBe(0);
    for (const args of [['producer'], ['consumer'], ['--back-pressure', 'consumer'], ['--multicast', 'consumer']]) {
      const refused = await runFilebus(['--filename', flockBus.B, '--lock', 'mkdir', ...args], { input: 'more' });
      expect(refused.code, args.join(' ')).toBe(2);
      expect(refused.stderr).toMatch(/^filebus: .*locked with --lock flock.*\n$/);
    }
    // Nothing was delivered or published by the refused processes.
    expect(fs.readFileSync(mkdirBus.A, 'utf8')).toBe('a chunk');
    expect(fs.readFileSync(flockBus.A, 'utf8')).toBe('a chunk');
  });

  for (const lock of ['flock', 'mkdir'] as const) {
    it(`--lock ${lock}: a back-pressure consumer on B killed while holding the lock does not wedge the bus for a consumer on A`, async () => {
      const bus = newBus();
      const flags = ['--back-pressure', '--block-size', String(MiB), '--lock', lock];
      const input = randomBytes(4 * MiB);
      const inputFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'filebus-locks-')), 'input');
      cleanups.push(() => fs.rmSync(path.dirname(inputFile), { recursive: true, force: true }));
      fs.writeFileSync(inputFile, input);

      // B takes the first 1 MiB chunk under the lock and blocks writing it to a pipe nobody reads.
      const holder = startFilebus(['--filename', bus.B, ...flags, 'consumer'], { stdin: 'ignore', stdout: 'unread' });
      const producer = startFilebus(['--filename', bus.A, ...flags, 'producer'], { stdin: { file: inputFile } });
      await until(() => lockHeld(bus.A, lock), 'consumer B to hold the lock', 20_000);
      await sleep(500);
      expect(holder.running()).toBe(true);
      expect(lockHeld(bus.A, lock)).toBe(true);

      const taker = startFilebus(['--filename', bus.A, ...flags, 'consumer'], { stdin: 'ignore' });
      await sleep(500);
      expect(taker.stdoutBytes()).toBe(0);
      const killedAt = performance.now();
      process.kill(-holder.pid, 'SIGKILL');
      await until(() => taker.stdoutBytes() > 0, 'consumer A to get the chunk B held', MKDIR_STALE_MS + 20_000);
      const recoveryMs = performance.now() - killedAt;
      console.log(`[${config}] --lock ${lock}: consumer on B SIGKILLed holding the lock; consumer on A had the chunk ${recoveryMs.toFixed(0)} ms later`);

      const exit = await within(taker.done, 60_000, 'consumer A to finish the stream');
      expect(exit.code, taker.stderr()).toBe(0);
      // The chunk B held was never removed: A delivers it whole, then the rest, and the end.
      expect(taker.stdout().equals(input)).toBe(true);
      expect((await within(producer.done, 30_000, 'the producer')).code).toBe(0);
      if (lock === 'flock') {
        expect(recoveryMs).toBeLessThan(2_000);
      } else {
        // The dead holder refreshed the directory every MKDIR_UPDATE_MS; it goes stale MKDIR_STALE_MS after the last refresh.
        expect(recoveryMs).toBeGreaterThan(MKDIR_STALE_MS - MKDIR_UPDATE_MS - 1_000);
        expect(recoveryMs).toBeLessThan(MKDIR_STALE_MS + 3_000);
      }
    });
  }
});
