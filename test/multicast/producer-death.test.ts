/**
 * Segment numbers under producer death (issue 13, point 1). A producer that
 * dies in the middle of a publish, between putting segments in place and
 * re-linking FILE, must not let a live producer take a number that is
 * already on disk: consumers would deliver one of the two segments and lose
 * the other.
 *
 * The victims run under strace, which kills them (or fails a call) at an
 * exact system call of the publish, so the instant is the same on every run:
 * - `rename`: the 1st is the producer's registration. A victim publishes
 *   two chunks in one batch: with the old order (segments, then FILE) the
 *   2nd and 3rd renames put them in place and the 4th is FILE's; with the
 *   new order (FILE, then segments) the 2nd is FILE's. Killed at the 2nd,
 *   3rd or 4th, it dies before, between or after its segments appear.
 * - `link` number 1: the first link of a publish, after (old order) or
 *   before (new order) the segments of the batch are in place.
 * - `link` failing with ENOSPC (a file system out of inodes).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeInput, mc } from '../helpers/cli.js';
import { startFilebus, type Proc } from '../helpers/procs.js';
import { within, until } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { segments, cursorIds, registered } from '../helpers/bus-layout.js';
import { RECORD_SIZE, records, parseRecords, type Tagged } from '../helpers/records.js';

const tmp = useBusDir('filebus-multicast-');

const BLOCK = 4096; // 64 records
const PER_CHUNK = BLOCK / RECORD_SIZE;

interface Victim {
  readonly tag: string;
  /** strace's -e inject= argument. */
  readonly inject: string;
  /** What strace reports when the injection hit: a kill, or the failed call. */
  readonly expect: 'killed' | 'ENOSPC';
}

/** Runs a producer of `chunks` chunks tagged `tag` under strace with one injected fault; returns strace's log. */
async function runVictim(bus: string, dir: string, victim: Victim, chunks: number): Promise<{ code: number | null; log: string; stderr: string }> {
  const input = writeInput(dir, `in-${victim.tag}`, records(victim.tag, chunks * PER_CHUNK));
  const log = path.join(dir, `strace-${victim.tag}`);
  const strace = ['strace', '-f', '-qq', '-o', log, '-e', 'trace=rename,link', '-e', `inject=${victim.inject}`, process.execPath];
  const producer = startFilebus(mc(bus, '--retain', 'all', '--block-size', String(BLOCK), 'producer'), { prefix: strace, stdin: { file: input }, stdout: 'ignore' });
  const { code, stderr } = await within(producer.ended, 30_000, `victim ${victim.tag}`);
  return { code, log: fs.readFileSync(log, 'utf8'), stderr };
}

/** Writes one chunk of `tag`'s records to a live producer and waits until it is published, FILE included. */
async function publishOne(bus: string, producer: Proc, tag: string, next: { [tag: string]: number }): Promise<void> {
  const before = new Set(segments(bus).map((s) => s.name));
  producer.stdin!.write(records(tag, PER_CHUNK, { first: next[tag]! }));
  next[tag]! += PER_CHUNK;
  await until(() => {
    // FILE is a segment that was not there before: the publish is over.
    try {
      const file = fs.statSync(bus).ino;
      return segments(bus).some((s) => !before.has(s.name) && fs.statSync(s.path).ino === file);
    } catch {
      return false;
    }
  }, `producer ${tag} to publish`);
}

function byTag(got: readonly Tagged[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const r of got) {
    let seqs = out.get(r.tag);
    if (!seqs) out.set(r.tag, (seqs = []));
    seqs.push(r.seq);
  }
  return out;
}

describe('multicast numbering when a producer dies mid-publish', () => {
  it('victims killed between segment and FILE (or failing the link with ENOSPC): live producers never reuse a number; consumers get every live record', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const named = startFilebus(mc(bus, '--name', 'alice', 'consumer'));
    await until(() => registered(bus, 'alice'), 'alice to register');
    const anonymous = startFilebus(mc(bus, 'consumer', '--from', 'earliest'));
    await until(() => cursorIds(bus).length === 2, 'the anonymous consumer to register');

    const live = {
      A: startFilebus(mc(bus, '--retain', 'all', '--block-size', String(BLOCK), 'producer'), { stdin: 'pipe' }),
      B: startFilebus(mc(bus, '--retain', 'all', '--block-size', String(BLOCK), 'producer'), { stdin: 'pipe' }),
    };
    const next: { [tag: string]: number } = { A: 0, B: 0 };
    const victims: Victim[] = [
      { tag: 'V', inject: 'rename:signal=KILL:when=3', expect: 'killed' },
      { tag: 'W', inject: 'link:signal=KILL:when=1', expect: 'killed' },
      { tag: 'X', inject: 'rename:signal=KILL:when=2', expect: 'killed' },
      { tag: 'Y', inject: 'link:error=ENOSPC:when=1', expect: 'ENOSPC' },
      { tag: 'Z', inject: 'rename:signal=KILL:when=4', expect: 'killed' },
    ];
    await publishOne(bus, live.A, 'A', next);
    await publishOne(bus, live.B, 'B', next);
    for (const victim of victims) {
      // A published last, so FILE is the segment A linked; then the victim dies mid-publish.
      await publishOne(bus, live.A, 'A', next);
      const v = await runVictim(bus, dir, victim, 2);
      if (victim.expect === 'killed') {
        expect(v.log, `victim ${victim.tag}'s strace log`).toContain('+++ killed by SIGKILL +++');
      } else {
        expect(v.log).toContain('ENOSPC (No space left on device) (INJECTED)');
        expect(v.code).toBe(1);
        expect(v.stderr.trim().split('\n')).toHaveLength(1);
      }
      // A publishes next: it must not take a number the victim used.
      await publishOne(bus, live.A, 'A', next);
      await publishOne(bus, live.B, 'B', next);
    }
    for (const p of Object.values(live)) p.stdin!.end();
    for (const p of Object.values(live)) {
      expect(await within(p.ended, 30_000, 'a live producer')).toMatchObject({ code: 0, signal: null, stderr: '' });
    }
    const consumers = [await within(named.ended, 30_000, 'alice'), await within(anonymous.ended, 30_000, 'the anonymous consumer')];

    // No number on disk twice, none skipped; one end marker, the newest.
    const all = segments(bus);
    const seqs = all.map((s) => s.seq);
    expect(seqs.filter((seq, i) => seqs.indexOf(seq) !== i)).toEqual([]);
    expect(seqs).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
    expect(all.filter((s) => fs.statSync(s.path).size === 0).map((s) => s.seq)).toEqual([all.length]);
    const everything = Buffer.concat(all.map((s) => fs.readFileSync(s.path)));

    for (const c of consumers) {
      expect({ code: c.code, stderr: c.stderr }).toEqual({ code: 0, stderr: '' });
      expect(c.stdout.equals(everything)).toBe(true);
      const tags = byTag(parseRecords(c.stdout));
      // Every record of the live producers, once each, in order.
      for (const tag of ['A', 'B']) {
        expect({ tag, seqs: tags.get(tag) }).toEqual({ tag, seqs: Array.from({ length: next[tag]! }, (_, i) => i) });
      }
      // Of a victim, what it got into place before dying: a prefix of its input, whole chunks.
      for (const victim of victims) {
        const got = tags.get(victim.tag) ?? [];
        expect({ tag: victim.tag, prefix: got.every((seq, i) => seq === i), whole: got.length % PER_CHUNK }).toEqual({ tag: victim.tag, prefix: true, whole: 0 });
      }
    }
  }, 120_000);

  it('three producers streaming at once (one much faster) while victims die at every step of a publish: no number twice, every live record delivered', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const named = startFilebus(mc(bus, '--name', 'bob', 'consumer'));
    await until(() => registered(bus, 'bob'), 'bob to register');
    const args = mc(bus, '--retain', 'all', '--block-size', String(BLOCK), 'producer');
    // Fed a chunk at a time through pipes for as long as the victims run, so
    // they publish all along, and the stream ends (the last producer's end
    // marker) after everything else.
    // A live producer that published last is the one that could take a dead
    // victim's number (the others see FILE changed), so A gets most chunks.
    const live = ['A', 'B', 'C'].map((tag, i) => ({ tag, proc: startFilebus(args, { stdin: 'pipe' }), sent: 0, every: [1, 7, 13][i]! }));
    let feeding = true;
    const feed = (async () => {
      for (let tick = 0; feeding; tick++) {
        for (const p of live) {
          if (tick % p.every !== 0) continue;
          p.proc.stdin!.write(records(p.tag, PER_CHUNK, { first: p.sent }));
          p.sent += PER_CHUNK;
        }
        await new Promise((r) => setTimeout(r, 3));
      }
    })();
    // Victims one after another while the live producers run, each killed at
    // a different step; several chunks each, so some die between two batches.
    const victims: Victim[] = ['rename:signal=KILL:when=2', 'rename:signal=KILL:when=3', 'rename:signal=KILL:when=4', 'link:signal=KILL:when=1',
      'rename:signal=KILL:when=5', 'link:signal=KILL:when=2', 'link:error=ENOSPC:when=1', 'rename:signal=KILL:when=6']
      .map((inject, i) => ({ tag: 'STUVWXYZ'[i]!, inject, expect: inject.includes('ENOSPC') ? 'ENOSPC' : 'killed' }));
    const ended: Promise<unknown>[] = [];
    for (const victim of victims) ended.push(runVictim(bus, dir, victim, 3));
    await Promise.all(ended);
    feeding = false;
    await feed;
    for (const { proc } of live) proc.stdin!.end();
    for (const { proc } of live) expect(await within(proc.ended, 60_000, 'a live producer')).toMatchObject({ code: 0, signal: null, stderr: '' });
    const got = await within(named.ended, 60_000, 'bob');
    expect({ code: got.code, stderr: got.stderr }).toEqual({ code: 0, stderr: '' });

    const all = segments(bus);
    const seqs = all.map((s) => s.seq);
    expect(seqs.filter((seq, i) => seqs.indexOf(seq) !== i)).toEqual([]);
    expect(seqs).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
    expect(got.stdout.equals(Buffer.concat(all.map((s) => fs.readFileSync(s.path))))).toBe(true);
    const tags = byTag(parseRecords(got.stdout));
    for (const { tag, sent } of live) {
      const mine = tags.get(tag) ?? [];
      expect({ tag, count: mine.length, inOrder: mine.every((seq, i) => seq === i) }).toEqual({ tag, count: sent, inOrder: true });
    }
  }, 180_000);
});
