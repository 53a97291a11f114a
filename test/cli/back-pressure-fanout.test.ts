import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startFilebus, waitForWatch, type Proc } from '../helpers/procs.js';
import { within } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { listTree } from '../helpers/bus-layout.js';
import { RECORD_SIZE, records, parseRecords, seqsOf, range, isIncreasing } from '../helpers/records.js';

const tmp = useBusDir('filebus-cli-fanout-', { ownDir: true });

describe('back-pressure with three consumers', () => {
  it('every chunk goes to exactly one consumer, in order; the one that takes EOF exits 0, the others keep waiting', async () => {
    const count = 1200;
    const recordsPerChunk = 8;
    const input = records('R', count);
    const inputFile = path.join(tmp.dir, 'input.bin');
    fs.writeFileSync(inputFile, input);
    const common = ['--filename', tmp.bus, '--back-pressure', '--block-size', String(RECORD_SIZE * recordsPerChunk)];

    const consumers = [0, 1, 2].map(() => startFilebus([...common, 'consumer'], { stdin: 'ignore' }));
    // All three watch the bus before the first chunk appears, so all three compete for it.
    await Promise.all(consumers.map((c) => waitForWatch(c.pid)));
    const producer = startFilebus([...common, 'producer'], { stdin: { file: inputFile } });

    expect(await within(producer.done, 60_000, 'the producer')).toEqual({ code: 0, signal: null });
    expect(producer.stderr()).toBe('');

    const first = await within(
      Promise.race(consumers.map((c, i) => c.done.then((exit) => ({ i, exit })))),
      30_000,
      'a consumer to take the end marker',
    );
    expect(first.exit).toEqual({ code: 0, signal: null });
    const others = consumers.filter((_, i) => i !== first.i);
    // The end marker is gone: nothing the two others can see would end them.
    // (The turn file is theirs while they wait: lock/taker-turn.ts.)
    expect(listTree(tmp.busDir).filter((name) => name !== '.bus.taker')).toEqual(['bus.lock']);
    await new Promise((r) => setTimeout(r, 300));
    for (const other of others) expect(other.running()).toBe(true);
    // SIGKILL: how they handle SIGTERM is tested in safety.test.ts.
    for (const other of others) other.child.kill('SIGKILL');
    for (const other of others) expect(await other.done).toEqual({ code: null, signal: 'SIGKILL' });

    for (const c of consumers) expect(c.stderr()).toBe('');
    const shares = consumers.map((c: Proc) => parseRecords(c.stdout()));
    for (const share of shares) {
      // Whole chunks only: a consumer's share is made of whole blocks.
      expect(share.length % recordsPerChunk).toBe(0);
      expect(isIncreasing(share.map((r) => r.seq))).toBe(true);
    }
    const all = shares.flat().map((r) => r.seq).sort((a, b) => a - b);
    expect(all).toEqual(range(count)); // each record exactly once, none missing
    expect(seqsOf(shares.flat(), 'R').length).toBe(count);
    // With 150 chunks and three watching consumers, the work was shared.
    expect(shares.filter((s) => s.length > 0).length).toBeGreaterThanOrEqual(2);
  });
});
