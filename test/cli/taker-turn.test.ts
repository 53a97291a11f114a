/**
 * The taker's turn (lock/taker-turn.ts): of the idle back-pressure consumers
 * of a bus, only the one whose turn it is watches FILE, so a publish wakes
 * one process however many wait; a consumer stopped while it has the turn
 * stops nobody; a consumer that keeps up lets others that wait have the turn.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startFilebus, waitForWatch } from '../helpers/procs.js';
import { within } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { listTree } from '../helpers/bus-layout.js';
import { RECORD_SIZE, records, parseRecords } from '../helpers/records.js';

const tmp = useBusDir('filebus-cli-turn-', { ownDir: true });

function watches(pid: number): boolean {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:inotify';
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** Waits until pid holds an inotify watch: it opens the turn file before it sets up its watch. */
async function waitForInotify(pid: number, timeoutMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (watches(pid)) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

function writeInput(count: number): { input: Buffer; file: string } {
  const input = records('R', count);
  const file = path.join(tmp.dir, 'input.bin');
  fs.writeFileSync(file, input);
  return { input, file };
}

describe('the taker turn of back-pressure consumers', () => {
  it('of ten idle consumers one watches FILE; every chunk still goes to exactly one of them', async () => {
    const common = ['--filename', tmp.bus, '--back-pressure', '--block-size', String(RECORD_SIZE * 4)];
    const consumers = Array.from({ length: 10 }, () => startFilebus([...common, 'consumer'], { stdin: 'ignore' }));
    await Promise.all(consumers.map((c) => waitForWatch(c.pid)));
    await new Promise((r) => setTimeout(r, 500));
    expect(consumers.filter((c) => watches(c.pid)).length).toBe(1);

    const { input, file } = writeInput(4000);
    const producer = startFilebus([...common, 'producer'], { stdin: { file } });
    expect(await within(producer.done, 60_000, 'the producer')).toEqual({ code: 0, signal: null });
    const ender = await within(Promise.race(consumers.map((c) => c.done.then(() => c))), 30_000, 'a consumer to take the end marker');
    expect(await ender.done).toEqual({ code: 0, signal: null });
    // The others keep waiting, as before: kill them, then count what each delivered.
    for (const c of consumers) if (c !== ender) c.child.kill('SIGKILL');
    await Promise.all(consumers.map((c) => c.done));
    const got = consumers.flatMap((c) => parseRecords(c.stdout()));
    expect(got.length).toBe(4000);
    expect(new Set(got.map((r) => r.seq)).size).toBe(4000);
    expect(Buffer.concat(consumers.map((c) => c.stdout())).length).toBe(input.length);
  });

  it('a consumer SIGSTOPped while it has the turn stops nobody: another delivers the whole stream and exits 0', async () => {
    const common = ['--filename', tmp.bus, '--back-pressure', '--block-size', String(RECORD_SIZE * 4)];
    const stopped = startFilebus([...common, 'consumer'], { stdin: 'ignore' });
    // Alone on the bus, it has the turn: it watches FILE.
    expect(await waitForInotify(stopped.pid)).toBe(true);
    stopped.child.kill('SIGSTOP');
    const other = startFilebus([...common, 'consumer'], { stdin: 'ignore' });
    await waitForWatch(other.pid);

    const { input, file } = writeInput(800);
    const producer = startFilebus([...common, 'producer'], { stdin: { file } });
    expect(await within(producer.done, 60_000, 'the producer')).toEqual({ code: 0, signal: null });
    expect(await within(other.done, 30_000, 'the running consumer')).toEqual({ code: 0, signal: null });
    expect(other.stdout().equals(input)).toBe(true);
    expect(other.stderr()).toBe('');

    stopped.child.kill('SIGCONT');
    await new Promise((r) => setTimeout(r, 300));
    expect(stopped.running()).toBe(true);
    stopped.child.kill('SIGTERM');
    expect(await within(stopped.done, 10_000, 'the stopped consumer')).toEqual({ code: null, signal: 'SIGTERM' });
    expect(stopped.stdout().length).toBe(0);
    // The last consumer to leave removes the turn file: only the lock stays.
    expect(listTree(tmp.busDir)).toEqual(['bus.lock']);
  });

  it('a consumer SIGKILLed while it has the turn: another takes the turn and delivers the whole stream', async () => {
    const common = ['--filename', tmp.bus, '--back-pressure', '--block-size', String(RECORD_SIZE * 4)];
    const killed = startFilebus([...common, 'consumer'], { stdin: 'ignore' });
    expect(await waitForInotify(killed.pid)).toBe(true);
    const other = startFilebus([...common, 'consumer'], { stdin: 'ignore' });
    await waitForWatch(other.pid);
    killed.child.kill('SIGKILL');
    expect(await killed.done).toEqual({ code: null, signal: 'SIGKILL' });
    const { input, file } = writeInput(800);
    const producer = startFilebus([...common, 'producer'], { stdin: { file } });
    expect(await within(producer.done, 60_000, 'the producer')).toEqual({ code: 0, signal: null });
    expect(await within(other.done, 30_000, 'the other consumer')).toEqual({ code: 0, signal: null });
    expect(other.stdout().equals(input)).toBe(true);
    // The killed one's turn file is removed by the last to leave.
    expect(listTree(tmp.busDir)).toEqual(['bus.lock']);
  });

  it('a consumer that keeps up lets the others have the turn: three consumers of a fast stream all get chunks', async () => {
    const common = ['--filename', tmp.bus, '--back-pressure', '--block-size', String(RECORD_SIZE)];
    const consumers = [0, 1, 2].map(() => startFilebus([...common, 'consumer'], { stdin: 'ignore' }));
    await Promise.all(consumers.map((c) => waitForWatch(c.pid)));
    const { file } = writeInput(600);
    const producer = startFilebus([...common, 'producer'], { stdin: { file } });
    expect(await within(producer.done, 60_000, 'the producer')).toEqual({ code: 0, signal: null });
    await within(Promise.race(consumers.map((c) => c.done)), 30_000, 'a consumer to take the end marker');
    for (const c of consumers) c.child.kill('SIGKILL');
    await Promise.all(consumers.map((c) => c.done));
    const shares = consumers.map((c) => parseRecords(c.stdout()).length);
    expect(shares.reduce((a, b) => a + b, 0), `shares ${shares.join(', ')}`).toBe(600);
    expect(shares.filter((n) => n > 0).length, `shares ${shares.join(', ')}`).toBe(3);
  });
});
