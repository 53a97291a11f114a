/**
 * `--retain all`: the segments directory is the whole stream (cat
 * FILE.segments/* reassembles it), late consumers replay it, and a segment
 * whose bytes no longer match the checksum in its name stops a consumer
 * before it emits a byte of it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256, randomData, writeInput, mc } from '../helpers/cli.js';
import { runFilebus } from '../helpers/procs.js';
import { within } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { segments, catSegments, cursorPath, cursorIds, readCursor } from '../helpers/bus-layout.js';

const tmp = useBusDir('filebus-multicast-');

const BLOCK = 4096;

/** Publishes `input` (whole blocks, from a file) on a fresh bus with --retain all and no consumer. */
async function archive(chunks: number): Promise<{ bus: string; input: Buffer }> {
  const dir = tmp.dir;
  const bus = path.join(dir, 'bus');
  const input = randomData(chunks * BLOCK);
  const inputFile = writeInput(dir, 'input', input);
  // A window far smaller than the stream: --retain all overrides it.
  const produced = await within(runFilebus(mc(bus, '--retain', 'all', '--window', '4', '--block-size', String(BLOCK), 'producer'), { stdin: { file: inputFile } }),
    30_000, 'the producer');
  expect(produced).toMatchObject({ code: 0, signal: null, stderr: '' });
  return { bus, input };
}

describe('multicast --retain all', () => {
  it('keeps the whole stream: cat FILE.segments/* is the input, and late consumers replay it', async () => {
    const chunks = 300;
    const { bus, input } = await archive(chunks);

    const all = segments(bus);
    expect(all.map((s) => s.seq)).toEqual(Array.from({ length: chunks + 1 }, (_, i) => i + 1));
    expect(fs.readdirSync(`${bus}.segments`).length).toBe(chunks + 1);
    expect(all.slice(0, -1).every((s) => fs.statSync(s.path).size === BLOCK)).toBe(true);
    const marker = all.at(-1)!;
    expect(marker.name).toBe('00000000000000000301.00000000');
    expect(fs.statSync(marker.path).size).toBe(0);
    // FILE is another name for the newest segment: the end marker.
    const fileStat = fs.statSync(bus);
    const markerStat = fs.statSync(marker.path);
    expect({ dev: fileStat.dev, ino: fileStat.ino, size: fileStat.size }).toEqual({ dev: markerStat.dev, ino: markerStat.ino, size: 0 });
    const cat = catSegments(bus);
    expect(cat.length).toBe(input.length);
    expect(sha256(cat)).toBe(sha256(input));

    const earliest = await within(runFilebus(mc(bus, 'consumer', '--from', 'earliest')), 30_000, 'a late --from earliest consumer');
    expect({ code: earliest.code, stderr: earliest.stderr, bytes: earliest.bytes }).toEqual({ code: 0, stderr: '', bytes: input.length });
    expect(sha256(earliest.stdout)).toBe(sha256(input));

    // Without --from, a consumer joining an ended stream replays what is retained of it.
    const byDefault = await within(runFilebus(mc(bus, 'consumer')), 30_000, 'a late default consumer');
    expect({ code: byDefault.code, stderr: byDefault.stderr }).toEqual({ code: 0, stderr: '' });
    expect(sha256(byDefault.stdout)).toBe(sha256(input));

    // --from N starts at segment N.
    const fromMiddle = await within(runFilebus(mc(bus, 'consumer', '--from', '101')), 30_000, 'a --from 101 consumer');
    expect({ code: fromMiddle.code, stderr: fromMiddle.stderr }).toEqual({ code: 0, stderr: '' });
    expect(fromMiddle.stdout.equals(input.subarray(100 * BLOCK))).toBe(true);

    // Nothing is retained past the end marker.
    const beyond = await runFilebus(mc(bus, 'consumer', '--from', '303'));
    expect(beyond.code).toBe(2);
    expect(beyond.stdout.length).toBe(0);
    expect(beyond.stderr).toBe('filebus: --from 303: segment is not retained (retained: 1 to 301; next: 302)\n');

    // Every anonymous consumer removed its cursor; the archive is untouched.
    expect(cursorIds(bus)).toEqual([]);
    expect(segments(bus).length).toBe(chunks + 1);
  });

  it('a corrupted segment stops a consumer with exit 1, naming it, after exactly the segments before it', async () => {
    const chunks = 40;
    const { bus, input } = await archive(chunks);
    const bad = segments(bus).find((s) => s.seq === 10)!;
    const bytes = fs.readFileSync(bad.path);
    bytes[1234] = bytes[1234]! ^ 0x01;
    fs.writeFileSync(bad.path, bytes);
    const before = input.subarray(0, 9 * BLOCK);
    const message = `filebus: segment ${bad.path} is corrupt: `;

    const anonymous = await within(runFilebus(mc(bus, 'consumer', '--from', 'earliest')), 30_000, 'a consumer reading the corrupt bus');
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr.startsWith(message)).toBe(true);
    expect(anonymous.stderr.endsWith('\n')).toBe(true);
    expect(anonymous.stderr.split('\n')).toHaveLength(2); // one line
    expect(anonymous.stdout.length).toBe(before.length);
    expect(anonymous.stdout.equals(before)).toBe(true);
    expect(cursorIds(bus)).toEqual([]);

    // A named consumer stops in the same place, and its cursor stays on the
    // corrupt segment: restarted, it emits nothing and fails again.
    const named = await within(runFilebus(mc(bus, 'consumer', '--name', 'carol', '--from', 'earliest')), 30_000, 'carol');
    expect(named.code).toBe(1);
    expect(named.stderr.startsWith(message)).toBe(true);
    expect(named.stdout.equals(before)).toBe(true);
    expect(readCursor(cursorPath(bus, 'carol'))).toBe(10);
    const again = await within(runFilebus(mc(bus, 'consumer', '--name', 'carol')), 30_000, 'carol, restarted');
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(named.stderr);
    expect(again.stdout.length).toBe(0);
    expect(readCursor(cursorPath(bus, 'carol'))).toBe(10);

    // The segment is still there, unchanged by the readers.
    expect(fs.readFileSync(bad.path).equals(bytes)).toBe(true);
  });
});
