import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomData } from '../helpers/cli.js';
import { startFilebus, waitForWatch, type Proc, type Exit } from '../helpers/procs.js';
import { within, until } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { listTree } from '../helpers/bus-layout.js';
import { RECORD_SIZE, records, parseRecords, seqsOf, range } from '../helpers/records.js';

// Back-pressure with several producers: each publishes its own end marker
// (an empty chunk), and each marker ends one consumer. A consumer holding a
// marker waits for the data chunks other consumers hold, never for the
// markers they hold (issue 13, point 2: two consumers each holding a marker
// waited for each other forever).

const tmp = useBusDir('filebus-end-markers-', { ownDir: true });

const MiB = 1024 * 1024;
const OK: Exit = { code: 0, signal: null };
const taken = (): string[] => fs.readdirSync(tmp.busDir).filter((name) => name.endsWith('.taken'));
const takenSizes = (): number[] => taken().map((name) => {
  try { return fs.statSync(path.join(tmp.busDir, name)).size; } catch { return -1; }
}).sort((a, b) => a - b);

function inputFile(name: string, data: Buffer): string {
  const file = path.join(tmp.dir, name);
  fs.writeFileSync(file, data);
  return file;
}

/** A consumer whose stdout nobody reads yet: it blocks writing a chunk larger than a pipe holds. */
function holdingConsumer(common: readonly string[]): { proc: Proc; release: () => Promise<Buffer> } {
  const proc = startFilebus([...common, 'consumer'], { stdin: 'ignore', stdout: 'unread' });
  const out: Buffer[] = [];
  const release = async (): Promise<Buffer> => {
    proc.child.stdout!.on('data', (d: Buffer) => out.push(d));
    proc.child.stdout!.resume();
    await until(() => Buffer.concat(out).length === MiB, 'the held chunk to arrive', 15_000);
    return Buffer.concat(out);
  };
  return { proc, release };
}

describe('end markers from several producers', () => {
  it('two consumers each holding an end marker both exit 0 once the data chunk another holds is delivered', async () => {
    const common = ['--filename', tmp.bus, '--back-pressure', '--block-size', String(MiB)];
    const data = randomData(MiB);
    // H takes the only data chunk and blocks writing it out.
    const holder = holdingConsumer(common);
    const p1 = startFilebus([...common, 'producer'], { stdin: { file: inputFile('data', data) } });
    await until(() => takenSizes().join() === String(MiB), 'the data chunk taken', 15_000);
    // P1's end marker goes to A, which waits for H's chunk.
    const a = startFilebus([...common, 'consumer'], { stdin: 'ignore' });
    expect(await within(p1.done, 15_000, 'producer 1')).toEqual(OK);
    await until(() => takenSizes().join() === `0,${MiB}`, "A holding producer 1's end marker", 15_000);
    // P2 (no input) publishes a second marker, which goes to B.
    const b = startFilebus([...common, 'consumer'], { stdin: 'ignore' });
    await waitForWatch(b.pid);
    const p2 = startFilebus([...common, 'producer'], { stdin: 'ignore' });
    expect(await within(p2.done, 15_000, 'producer 2')).toEqual(OK);
    await until(() => takenSizes().join() === `0,0,${MiB}` && !fs.existsSync(tmp.bus), "B holding producer 2's end marker", 15_000);
    expect(a.running() && b.running()).toBe(true);

    // H delivers: nothing but end markers is held now, and those end their holders.
    expect((await holder.release()).equals(data)).toBe(true);
    expect(await within(a.done, 15_000, 'consumer A')).toEqual(OK);
    expect(await within(b.done, 15_000, 'consumer B')).toEqual(OK);
    expect(a.stdout().length + b.stdout().length).toBe(0);
    expect(a.stderr() + b.stderr()).toBe('');
    // H got no marker: it waits for one, as a consumer with nothing to end it does.
    expect(holder.proc.running()).toBe(true);
    const p3 = startFilebus([...common, 'producer'], { stdin: 'ignore' });
    expect(await within(p3.done, 15_000, 'producer 3')).toEqual(OK);
    expect(await within(holder.proc.done, 15_000, 'consumer H')).toEqual(OK);
    expect(listTree(tmp.busDir)).toEqual(['bus.lock']);
  });

  it('a consumer killed holding an end marker: the marker ends another consumer instead', async () => {
    const common = ['--filename', tmp.bus, '--back-pressure', '--block-size', String(MiB), '--sleep-interval', '0.2'];
    const holder = holdingConsumer(common);
    const p1 = startFilebus([...common, 'producer'], { stdin: { file: inputFile('data', randomData(MiB)) } });
    await until(() => takenSizes().join() === String(MiB), 'the data chunk taken', 15_000);
    const a = startFilebus([...common, 'consumer'], { stdin: 'ignore' });
    expect(await within(p1.done, 15_000, 'producer 1')).toEqual(OK);
    await until(() => takenSizes().join() === `0,${MiB}`, 'A holding the end marker', 15_000);
    process.kill(-a.pid, 'SIGKILL');
    expect(await within(a.done, 15_000, 'consumer A')).toEqual({ code: null, signal: 'SIGKILL' });

    // The abandoned marker is adopted by B (at its start) or by H (once idle,
    // after delivering its chunk), and ends the one that adopted it.
    const b = startFilebus([...common, 'consumer'], { stdin: 'ignore' });
    await holder.release();
    const ended = await within(Promise.race([b, holder.proc].map((c) => c.done.then((exit) => ({ c, exit })))), 15_000,
      'a consumer to end on the adopted marker');
    expect(ended.exit).toEqual(OK);
    const other = ended.c === b ? holder.proc : b;
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(other.running(), 'one marker ends one consumer').toBe(true);
    other.child.kill('SIGTERM');
    await within(other.done, 15_000, 'the other consumer');
    expect(b.stdout().length).toBe(0);
    expect(listTree(tmp.busDir)).toEqual(['bus.lock']);
  });

  it('more end markers than consumers: each marker ends one consumer, the extra ones wait on the bus for the next', async () => {
    const common = ['--filename', tmp.bus, '--back-pressure', '--block-size', String(RECORD_SIZE * 4)];
    const tags = ['A', 'B', 'C'];
    const count = 200;
    const consumer = startFilebus([...common, 'consumer'], { stdin: 'ignore' });
    await waitForWatch(consumer.pid);
    const producers = tags.map((tag) => startFilebus([...common, 'producer'], { stdin: { file: inputFile(tag, records(tag, count)) } }));
    expect(await within(consumer.done, 30_000, 'the consumer')).toEqual(OK);
    const outputs = [consumer.stdout()];
    // Two markers are left: one at FILE, one in a producer waiting for FILE to be free. Each ends one more consumer.
    for (let i = 0; i < 2; i++) {
      const next = startFilebus([...common, 'consumer'], { stdin: 'ignore' });
      expect(await within(next.done, 30_000, `extra consumer ${i + 1}`)).toEqual(OK);
      outputs.push(next.stdout());
    }
    for (const p of producers) expect(await within(p.done, 15_000, 'a producer')).toEqual(OK);
    const all = outputs.flatMap((o) => parseRecords(o));
    for (const tag of tags) expect(seqsOf(all, tag).sort((x, y) => x - y)).toEqual(range(count));
    expect(listTree(tmp.busDir)).toEqual(['bus.lock']);
  });

  it('N producers and N consumers, many times over: every record once, every consumer exits 0, nothing left', async () => {
    const n = 3;
    const count = 60;
    const runs = Number(process.env.FILEBUS_END_MARKER_RUNS ?? 10);
    const tags = ['A', 'B', 'C'];
    const files = tags.map((tag) => inputFile(tag, records(tag, count)));
    for (let run = 0; run < runs; run++) {
      const common = ['--filename', tmp.bus, '--back-pressure', '--block-size', String(RECORD_SIZE * 2)];
      const consumers = range(n).map(() => startFilebus([...common, 'consumer'], { stdin: 'ignore' }));
      await Promise.all(consumers.map((c) => waitForWatch(c.pid)));
      // Small inputs: the producers end close together, so their markers are taken close together.
      const producers = files.map((file) => startFilebus([...common, 'producer'], { stdin: { file } }));
      for (const p of producers) expect(await within(p.done, 30_000, `run ${run}: a producer`)).toEqual(OK);
      const exits = await within(Promise.all(consumers.map((c) => c.done)), 15_000,
        `run ${run}: the consumers to end (taken chunks left: ${takenSizes().join()})`);
      expect(exits).toEqual([OK, OK, OK]);
      const all = consumers.flatMap((c) => parseRecords(c.stdout()));
      for (const tag of tags) expect(seqsOf(all, tag).sort((x, y) => x - y)).toEqual(range(count));
      expect(listTree(tmp.busDir)).toEqual(['bus.lock']);
    }
  }, 300_000);

  it('a consumer that finds two abandoned end markers ends on one and leaves the other to the next consumer', async () => {
    const common = ['--filename', tmp.bus, '--back-pressure'];
    // Two markers taken by consumers that died (no flock on them): the
    // next consumer adopts both at start. It used to turn them over for
    // ever, each one sending it back to the other.
    for (const n of [1, 2]) fs.writeFileSync(path.join(tmp.busDir, `.bus.deadhost.999999.${n}.0000000${n}.taken`), '');
    const first = startFilebus([...common, 'consumer'], { stdin: 'ignore' });
    expect(await within(first.done, 15_000, 'the first consumer')).toEqual(OK);
    const second = startFilebus([...common, 'consumer'], { stdin: 'ignore' });
    expect(await within(second.done, 15_000, 'the second consumer')).toEqual(OK);
    expect(first.stdout().length + second.stdout().length).toBe(0);
    expect(taken()).toEqual([]);
    expect(fs.existsSync(tmp.bus)).toBe(false);
  });
});

