/**
 * Corrupt state on disk: segments with garbage, truncated, emptied or
 * extended; cursor files with garbage, truncated, emptied, a bad checksum
 * or pointing at a deleted segment; a segment, cursor or producer directory
 * replaced by a regular file; a directory where a segment or FILE.lock
 * should be. Every command that meets one ends with one line naming the
 * path and a non-zero exit: never a stack trace, never a hang, and never
 * wrong output (a consumer emits exactly the intact chunks before the
 * corrupt one, nothing of it).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { runFilebus, killAll } from '../helpers/procs.js';
import { segments, cursorRecord, readCursor } from '../helpers/bus-layout.js';
import { chunkBytes, chunks as makeChunks, type Format } from '../helpers/records.js';
import { oneLineError, writeResults } from '../helpers/reliability.js';

const FORMAT: Format = { recordSize: 256, perChunk: 16 };
const SIZE = chunkBytes(FORMAT);
const dirs: string[] = [];
const outcomes: Record<string, string> = {};

afterEach(async () => {
  await killAll();
});

afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  writeResults('corrupt-state', { casesChecked: Object.keys(outcomes).length, stackTraces: 0, wrongOutputs: 0, outcomes });
});

/** A multicast bus holding 5 chunks and the end marker (retain all); alice has read 2 of them. */
async function busWithSegments(): Promise<{ dir: string; bus: string; input: Buffer; common: string[] }> {
  const dir = tempDir('filebus-reliability-corrupt-');
  dirs.push(dir);
  const bus = path.join(dir, 'bus');
  const input = makeChunks(FORMAT, 'CORR00', 5);
  fs.writeFileSync(path.join(dir, 'input'), input);
  const common = ['--filename', bus, '--multicast'];
  const made = await runFilebus([...common, '--retain', 'all', '--block-size', String(SIZE), 'producer'], { stdin: { file: path.join(dir, 'input') } });
  expect({ code: made.code, stderr: made.stderr }).toEqual({ code: 0, stderr: '' });
  fs.mkdirSync(`${bus}.consumers`, { recursive: true });
  fs.writeFileSync(path.join(`${bus}.consumers`, 'alice.cursor'), cursorRecord(3));
  return { dir, bus, input, common };
}

/** Runs a command that meets corrupt state: it must fail with one line naming `named`, and print only `expectedOut`. */
async function expectCleanFailure(label: string, args: string[], named: string, expectedOut: Buffer = Buffer.alloc(0), stdin?: string): Promise<void> {
  const r = await runFilebus(args, { stdin: stdin === undefined ? 'ignore' : { file: stdin }, timeoutMs: 20_000, onTimeout: 'report' });
  expect(r.timedOut, `${label}: must not hang`).toBe(false);
  expect(r.signal, `${label}: signal`).toBeNull();
  expect(r.code, `${label}: exit status`).not.toBe(0);
  const message = oneLineError(r.stderr);
  expect(message.includes(named), `${label}: the message names ${named}: ${message}`).toBe(true);
  expect(r.stdout.equals(expectedOut), `${label}: stdout is exactly the intact chunks before the damage (${r.stdout.length} bytes, expected ${expectedOut.length})`).toBe(true);
  outcomes[label] = `exit ${r.code}: ${message}`;
}

describe('corrupt segments', () => {
  const damages: Array<[string, (file: string) => void]> = [
    ['garbage of the same length', (f) => fs.writeFileSync(f, randomBytes(SIZE))],
    ['truncated to half', (f) => fs.truncateSync(f, SIZE / 2)],
    ['emptied', (f) => fs.truncateSync(f, 0)],
    ['extended with garbage', (f) => fs.appendFileSync(f, randomBytes(100))],
    ['one byte flipped', (f) => { const b = fs.readFileSync(f); b[100] = b[100]! ^ 0x01; fs.writeFileSync(f, b); }],
  ];
  for (const [what, damage] of damages) {
    it(`segment 3 ${what}: consumers emit segments 1-2 then fail with one line naming it`, async () => {
      const { bus, input, common } = await busWithSegments();
      const seg = segments(bus)[2]!;
      damage(seg.path);
      await expectCleanFailure(`segment ${what}, consumer from earliest`, [...common, '--from', 'earliest', 'consumer'], seg.path, input.subarray(0, 2 * SIZE));
      // alice's cursor is at 3: she emits nothing, and her cursor does not move past the damage.
      await expectCleanFailure(`segment ${what}, named consumer at it`, [...common, '--name', 'alice', 'consumer'], seg.path);
      expect(readCursor(path.join(`${bus}.consumers`, 'alice.cursor'))).toBe(3);
    });
  }

  it('a directory where segment 3 should be: one line naming it', async () => {
    const { bus, input, common } = await busWithSegments();
    const seg = segments(bus)[2]!;
    fs.rmSync(seg.path);
    fs.mkdirSync(seg.path);
    await expectCleanFailure('segment is a directory, consumer', [...common, '--from', 'earliest', 'consumer'], seg.path, input.subarray(0, 2 * SIZE));
  });
});

describe('corrupt cursors', () => {
  const damages: Array<[string, (file: string) => void]> = [
    ['garbage', (f) => fs.writeFileSync(f, randomBytes(30))],
    ['truncated', (f) => fs.truncateSync(f, 15)],
    ['emptied', (f) => fs.truncateSync(f, 0)],
    ['a record with a wrong checksum', (f) => fs.writeFileSync(f, `${'3'.padStart(20, '0')} 00000000\n`)],
    ['a record followed by junk', (f) => fs.appendFileSync(f, 'junk')],
  ];
  for (const [what, damage] of damages) {
    it(`alice's cursor ${what}: alice fails with one line naming it; nothing else is silently wrong`, async () => {
      const { dir, bus, input, common } = await busWithSegments();
      const cursor = path.join(`${bus}.consumers`, 'alice.cursor');
      damage(cursor);
      await expectCleanFailure(`cursor ${what}, the named consumer`, [...common, '--name', 'alice', 'consumer'], cursor);
      // Others read every cursor when they join, a producer when it applies retention:
      // each either names the damaged cursor in one line or works correctly.
      for (const [label, args, expected, stdin] of [
        ['an anonymous consumer', [...common, '--from', 'earliest', 'consumer'], input, undefined],
        ['a producer applying retention', [...common, '--window', '2', '--block-size', String(SIZE), 'producer'], Buffer.alloc(0), path.join(dir, 'input')],
      ] as const) {
        const r = await runFilebus(args, { stdin: stdin === undefined ? 'ignore' : { file: stdin }, timeoutMs: 20_000, onTimeout: 'report' });
        expect(r.timedOut, `${label}: must not hang`).toBe(false);
        if (r.code === 0) {
          expect({ stderr: r.stderr, out: r.stdout.equals(expected) }, label).toEqual({ stderr: '', out: true });
          outcomes[`cursor ${what}, ${label}`] = 'worked';
        } else {
          const message = oneLineError(r.stderr);
          expect(message.includes(cursor), `${label}: names the cursor: ${message}`).toBe(true);
          expect(r.stdout.length, `${label}: no output`).toBe(0);
          outcomes[`cursor ${what}, ${label}`] = `exit ${r.code}: ${message}`;
        }
      }
    });
  }

  it('a cursor pointing at a segment that was deleted: one line, no output', async () => {
    const { bus, common } = await busWithSegments();
    const segs = segments(bus);
    fs.rmSync(segs[0]!.path);
    fs.rmSync(segs[1]!.path);
    fs.rmSync(segs[2]!.path);
    await expectCleanFailure('cursor behind the oldest segment, the named consumer', [...common, '--name', 'alice', 'consumer'], `${bus}.segments`);
  });

  it('a directory where a cursor should be: one line naming it', async () => {
    const { bus, common } = await busWithSegments();
    const cursor = path.join(`${bus}.consumers`, 'alice.cursor');
    fs.rmSync(cursor);
    fs.mkdirSync(cursor);
    await expectCleanFailure('cursor is a directory, the named consumer', [...common, '--name', 'alice', 'consumer'], cursor);
  });
});

describe('bus directories and files replaced', () => {
  for (const which of ['segments', 'consumers', 'producers'] as const) {
    it(`FILE.${which} replaced by a regular file: multicast producers and consumers fail with one line naming it`, async () => {
      const { dir, bus, common } = await busWithSegments();
      const at = `${bus}.${which}`;
      fs.rmSync(at, { recursive: true });
      fs.writeFileSync(at, 'not a directory\n');
      await expectCleanFailure(`FILE.${which} is a file, producer`, [...common, '--block-size', String(SIZE), 'producer'], at, Buffer.alloc(0), path.join(dir, 'input'));
      if (which !== 'producers') await expectCleanFailure(`FILE.${which} is a file, consumer`, [...common, 'consumer'], at);
      expect(fs.readFileSync(at, 'utf8')).toBe('not a directory\n');
    });
  }

  for (const [mode, args] of [['lossy', []], ['back-pressure', ['--back-pressure']], ['multicast', ['--multicast']]] as const) {
    it(`${mode}: a directory at FILE.lock or at FILE: one line naming it`, async () => {
      const dir = tempDir('filebus-reliability-corrupt-');
      dirs.push(dir);
      const bus = path.join(dir, 'bus');
      fs.writeFileSync(path.join(dir, 'input'), makeChunks(FORMAT, 'CORR01', 2));
      fs.mkdirSync(`${bus}.lock`);
      await expectCleanFailure(`${mode}: FILE.lock is a directory, producer`, ['--filename', bus, ...args, 'producer'], `${bus}.lock`, Buffer.alloc(0), path.join(dir, 'input'));
      if (mode !== 'lossy') await expectCleanFailure(`${mode}: FILE.lock is a directory, consumer`, ['--filename', bus, ...args, 'consumer'], `${bus}.lock`);
      fs.rmSync(`${bus}.lock`, { recursive: true });
      fs.rmSync(`${bus}.segments`, { recursive: true, force: true });
      fs.mkdirSync(bus, { recursive: true });
      await expectCleanFailure(`${mode}: FILE is a directory, producer`, ['--filename', bus, ...args, 'producer'], bus, Buffer.alloc(0), path.join(dir, 'input'));
      await expectCleanFailure(`${mode}: FILE is a directory, consumer`, ['--filename', bus, ...args, 'consumer'], bus);
    });
  }
});
