/**
 * The steps filebus takes on a network file system (listing the directory
 * before looking at FILE, claiming a back-pressure chunk through a link,
 * asking the server whether FILE is there, checking FILE's identity
 * through a link before trusting the segment list), run on a local
 * directory with FILEBUS_NETWORK_FS=1: they must keep every mode's promises
 * exactly as the local steps do. The GlusterFS suite (npm run
 * test:distributed) shows that they also hold across hosts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomData } from '../helpers/cli.js';
import { startFilebus } from '../helpers/procs.js';
import { within, until } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { isIncreasing, parseRecords, range, records, RECORD_SIZE, seqsOf } from '../helpers/records.js';
import { tempFiles } from '../helpers/bus-layout.js';

const tmp = useBusDir('filebus-network-paths-');

beforeAll(() => {
  // Inherited by every filebus process this file starts.
  process.env.FILEBUS_NETWORK_FS = '1';
});

function inputFile(name: string, data: Buffer): string {
  const file = path.join(tmp.dir, name);
  fs.writeFileSync(file, data);
  return file;
}

describe('network steps on a local directory (FILEBUS_NETWORK_FS=1)', () => {
  it('-v reports the bus as on a network file system', async () => {
    const p = startFilebus(['-v', '--filename', tmp.bus, 'producer'], { stdin: 'pipe' });
    p.child.stdin!.end('x');
    await within(p.done, 15_000, 'the producer');
    expect(p.stderr()).toMatch(/a network file system; watching: polling/);
  });

  it('back-pressure: three consumers share 200 chunks, each exactly once, in order; no claim is left behind', async () => {
    const perChunk = 1024 / RECORD_SIZE;
    const data = records('R', 200 * perChunk);
    const flags = ['--filename', tmp.bus, '--back-pressure', '--block-size', '1024', '--sleep-interval', '0.01'];
    const consumers = [0, 1, 2].map(() => startFilebus([...flags, 'consumer'], { stdin: 'ignore' }));
    const producer = startFilebus([...flags, 'producer'], { stdin: { file: inputFile('input', data) } });
    expect((await within(producer.done, 60_000, 'the producer')).code, producer.stderr()).toBe(0);
    await until(() => consumers.some((c) => !c.running()), 'a consumer to take the end marker', 15_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(consumers.filter((c) => !c.running())).toHaveLength(1);
    const seen = new Map<number, number>();
    for (const c of consumers) {
      const seqs = seqsOf(parseRecords(c.stdout()), 'R'); // throws on a torn record
      expect(isIncreasing(seqs)).toBe(true);
      for (const seq of seqs) seen.set(seq, (seen.get(seq) ?? 0) + 1);
    }
    expect(seen.size).toBe(200 * perChunk);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(tempFiles(tmp.bus)).toEqual([]);
  });

  it('back-pressure: a consumer killed holding its claim leaves the chunk on the bus for the next consumer, and the claim is swept', async () => {
    const chunk = randomData(1024 * 1024);
    const flags = ['--filename', tmp.bus, '--back-pressure', '--block-size', String(chunk.length)];
    const producer = startFilebus([...flags, 'producer'], { stdin: { file: inputFile('input', chunk) } });
    const holder = startFilebus([...flags, 'consumer'], { stdin: 'ignore', stdout: 'unread' });
    // The claim is a temporary name linked to FILE (the producer's own temporary file holds its end marker).
    const claimOf = (): string | undefined => {
      try {
        const ino = fs.statSync(tmp.bus).ino;
        return tempFiles(tmp.bus).find((n) => fs.statSync(path.join(tmp.dir, n)).ino === ino);
      } catch {
        return undefined;
      }
    };
    await until(() => claimOf() !== undefined, 'the consumer to claim the chunk', 15_000);
    const claim = claimOf()!;
    process.kill(-holder.pid, 'SIGKILL');
    await within(holder.done, 5_000, 'the killed consumer');
    const taker = startFilebus([...flags, 'consumer'], { stdin: 'ignore' });
    expect((await within(taker.done, 15_000, 'the next consumer')).code).toBe(0);
    expect(taker.stdout().equals(chunk)).toBe(true);
    expect((await within(producer.done, 15_000, 'the producer')).code).toBe(0);
    // The next consumer, a writer of this host, removed the dead one's claim.
    expect(fs.existsSync(path.join(tmp.dir, claim))).toBe(false);
  });

  it('lossy: a consumer follows a paced producer chunk by chunk', async () => {
    const consumer = startFilebus(['--filename', tmp.bus, '--sleep-interval', '0.01', 'consumer'], { stdin: 'ignore' });
    const producer = startFilebus(['--filename', tmp.bus, '--sleep-interval', '0.01', 'producer'], { stdin: 'pipe' });
    let expected = '';
    for (let i = 0; i < 10; i++) {
      const line = `chunk ${i}\n`;
      expected += line;
      producer.child.stdin!.write(line);
      await until(() => consumer.stdout().toString() === expected, `the consumer to emit ${JSON.stringify(line)}`, 15_000);
    }
    producer.child.stdin!.end();
    expect((await within(producer.done, 15_000, 'the producer')).code).toBe(0);
    expect(consumer.stderr()).toBe('');
  });

  it('multicast: two producers at once, every record of both exactly once, segments numbered without a gap or a repeat', async () => {
    const per = 2000;
    const inputs = { A: records('A', per), B: records('B', per) };
    const flags = ['--filename', tmp.bus, '--multicast', '--retain', 'all', '--block-size', '4096'];
    const consumer = startFilebus([...flags.slice(0, 3), 'consumer'], { stdin: 'ignore' });
    await until(() => fs.existsSync(`${tmp.bus}.consumers`) && fs.readdirSync(`${tmp.bus}.consumers`).length === 1, 'the consumer to register', 15_000);
    const producers = (['A', 'B'] as const).map(() => startFilebus([...flags, 'producer'], { stdin: 'pipe' }));
    // Both registered before either can finish: the stream ends when the last one does.
    await until(() => fs.existsSync(`${tmp.bus}.producers`) && fs.readdirSync(`${tmp.bus}.producers`).length === 2, 'both producers to register', 15_000);
    producers[0]!.child.stdin!.end(inputs.A);
    producers[1]!.child.stdin!.end(inputs.B);
    for (const p of producers) expect((await within(p.done, 60_000, 'a producer')).code, p.stderr()).toBe(0);
    expect((await within(consumer.done, 30_000, 'the consumer')).code).toBe(0);
    const names = fs.readdirSync(`${tmp.bus}.segments`).sort();
    expect(names.map((n) => Number(n.slice(0, 20)))).toEqual(names.map((_, i) => i + 1));
    const out = consumer.stdout();
    expect(out.length).toBe(2 * per * RECORD_SIZE);
    const parsed = parseRecords(out);
    for (const tag of ['A', 'B'] as const) expect(seqsOf(parsed, tag)).toEqual(range(per));
  });
});
