/**
 * Damaged multicast state (issue 13, point 6): states in which the segment a
 * consumer waits for will never come. Each must end the consumer within
 * seconds with one line saying what is wrong and what to do, exit 1; not a
 * silent wait for ever. And a bus deleted and made again under running
 * consumers: they register again and follow the new stream.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeInput, mc } from '../helpers/cli.js';
import { startFilebus, runFilebus } from '../helpers/procs.js';
import { within, until } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { segments, cursorPath, cursorIds, registered, readCursor, cursorRecord } from '../helpers/bus-layout.js';
import { RECORD_SIZE, records, parseRecords } from '../helpers/records.js';

const tmp = useBusDir('filebus-multicast-');

const BLOCK = 4096;
const PER_CHUNK = BLOCK / RECORD_SIZE;

/** A bus of `chunks` chunks of tag A (and an end marker), fully retained. */
async function publish(bus: string, dir: string, chunks: number, tag = 'A'): Promise<Buffer> {
  const input = records(tag, chunks * PER_CHUNK);
  const result = await within(runFilebus(mc(bus, '--retain', 'all', '--block-size', String(BLOCK), 'producer'), { stdin: { file: writeInput(dir, `in-${tag}`, input) } }), 30_000, 'the producer');
  expect(result).toMatchObject({ code: 0, signal: null, stderr: '' });
  return input;
}

/** Ends within 10 s (a hang fails the test), exit 1, one line on stderr. */
async function failsWith(args: string[], what: string): Promise<{ stdout: Buffer; message: string }> {
  const result = await within(runFilebus(args), 10_000, what);
  expect({ code: result.code, signal: result.signal }).toEqual({ code: 1, signal: null });
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  return { stdout: result.stdout, message: lines[0]! };
}

describe('multicast consumers on damaged state', () => {
  it('a segment missing from the middle: the consumer delivers what comes before it, then fails naming it and how to skip it', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const input = await publish(bus, dir, 5);
    fs.rmSync(segments(bus)[2]!.path); // segment 3
    const anonymous = await failsWith(mc(bus, 'consumer', '--from', 'earliest'), 'an anonymous consumer');
    expect(anonymous.stdout.equals(input.subarray(0, 2 * BLOCK))).toBe(true);
    expect(anonymous.message).toMatch(/segment 3 is missing from .*bus\.segments, and segments 4 to 6 are there: it will not come; .*--from 4/);

    const named = await failsWith(mc(bus, '--name', 'carol', 'consumer', '--from', 'earliest'), 'a named consumer');
    expect(named.stdout.equals(input.subarray(0, 2 * BLOCK))).toBe(true);
    expect(named.message).toMatch(/segment 3 is missing .*filebus remove-consumer carol.* --from 4/);
    // Its cursor still says where it stopped: nothing was skipped silently.
    expect(readCursor(cursorPath(bus, 'carol'))).toBe(3);
  });

  it('--from into a hole is refused at once, naming the next segment there', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    await publish(bus, dir, 5);
    fs.rmSync(segments(bus)[2]!.path);
    const result = await failsWith(mc(bus, 'consumer', '--from', '3'), 'a --from 3 consumer');
    expect(result.stdout.length).toBe(0);
    expect(result.message).toMatch(/--from 3: segment 3 is missing .*use --from 4/);
    expect(cursorIds(bus)).toEqual([]);
  });

  it('a named cursor past the newest segment: the consumer fails at once, saying to remove it', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    await publish(bus, dir, 5);
    fs.writeFileSync(cursorPath(bus, 'dave'), cursorRecord(100));
    const result = await failsWith(mc(bus, '--name', 'dave', 'consumer'), 'dave');
    expect(result.stdout.length).toBe(0);
    expect(result.message).toMatch(/consumer dave is at segment 100, but the newest segment in .*bus\.segments is 6: .*filebus remove-consumer dave/);
    // Left for the user to decide.
    expect(readCursor(cursorPath(bus, 'dave'))).toBe(100);
  });

  it('segments removed under a waiting consumer: it fails, saying its position is past the stream', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const producer = startFilebus(mc(bus, '--retain', 'all', '--block-size', String(BLOCK), 'producer'), { stdin: 'pipe' });
    const erin = startFilebus(mc(bus, '--name', 'erin', 'consumer'));
    await until(() => registered(bus, 'erin'), 'erin to register');
    producer.stdin!.write(records('A', 3 * PER_CHUNK));
    await until(() => erin.stdoutBytes() === 3 * BLOCK, 'erin to receive 3 chunks');
    producer.child.kill('SIGKILL');
    for (const s of segments(bus)) fs.rmSync(s.path);
    const result = await within(erin.ended, 10_000, 'erin');
    expect({ code: result.code, signal: result.signal }).toEqual({ code: 1, signal: null });
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/consumer erin is at segment 4, but the newest segment in .*bus\.segments is none: .*filebus remove-consumer erin/);
  });

  it('the bus directory deleted and made again: waiting consumers register again and follow the new stream to its end', async () => {
    const dir = tmp.dir;
    const busDir = path.join(dir, 'sub');
    const bus = path.join(busDir, 'bus');
    const args = mc(bus, '--block-size', String(BLOCK), 'producer');
    const first = startFilebus(args, { stdin: 'pipe' });
    const named = startFilebus(mc(bus, '--name', 'frank', 'consumer'));
    await until(() => registered(bus, 'frank'), 'frank to register');
    const anonymous = startFilebus(mc(bus, 'consumer'));
    await until(() => cursorIds(bus).length === 2, 'the anonymous consumer to register');
    first.stdin!.write(records('A', 2 * PER_CHUNK));
    await until(() => named.stdoutBytes() === 2 * BLOCK && anonymous.stdoutBytes() === 2 * BLOCK, 'both consumers to receive the first 2 chunks');
    // The first stream never ends: its producer dies, then the whole bus goes.
    first.child.kill('SIGKILL');
    await first.exited;
    fs.rmSync(busDir, { recursive: true, force: true });
    await new Promise((r) => setTimeout(r, 300));
    fs.mkdirSync(busDir);
    const second = records('B', 3 * PER_CHUNK);
    const producer = await within(runFilebus(args, { stdin: { file: writeInput(dir, 'in-b', second) } }), 30_000, 'the second producer');
    expect(producer).toMatchObject({ code: 0, signal: null, stderr: '' });

    for (const [who, proc] of [['frank', named], ['the anonymous consumer', anonymous]] as const) {
      const got = await within(proc.ended, 10_000, who);
      expect({ who, code: got.code, stderr: got.stderr }).toEqual({ who, code: 0, stderr: '' });
      const recs = parseRecords(got.stdout);
      expect(recs.filter((r) => r.tag === 'A').map((r) => r.seq)).toEqual(Array.from({ length: 2 * PER_CHUNK }, (_, i) => i));
      expect(recs.filter((r) => r.tag === 'B').map((r) => r.seq)).toEqual(Array.from({ length: 3 * PER_CHUNK }, (_, i) => i));
    }
    // frank is registered on the new bus, past its end marker (segment 4).
    expect(readCursor(cursorPath(bus, 'frank'))).toBe(5);
  });
});
