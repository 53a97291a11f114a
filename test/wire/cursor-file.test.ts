/**
 * Multicast cursors (src/wire/cursor-file.ts): the 30-byte position record,
 * and cursor files in a real directory, owned, scanned, swept and removed.
 * Liveness here is flock (the default strategy): two descriptors of one
 * process exclude each other's flocks like two processes do.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { flockLiveness } from '../../src/lock/liveness.js';
import {
  checkConsumerName, decodeCursorRecord, encodeCursorRecord, listCursorFiles, OwnedCursor, removeCursor, scanCursors,
} from '../../src/wire/cursor-file.js';
import { anonymousId, busPaths, tempPath } from '../../src/wire/layout.js';
import { useBusDir } from '../helpers/bus-dir.js';

const tmp = useBusDir('filebus-wire-');

describe('the cursor record', () => {
  it('is the 30 bytes docs/protocol.md describes: 20 digits, a space, their CRC-32, a newline', () => {
    const record = encodeCursorRecord(5);
    expect(record.toString('latin1')).toBe('00000000000000000005 b4efb6ac\n');
    expect(record).toHaveLength(30);
    expect(encodeCursorRecord(Number.MAX_SAFE_INTEGER)).toHaveLength(30);
  });

  it('reads back every position', () => {
    for (const position of [0, 1, 2, 1000, 2 ** 40, Number.MAX_SAFE_INTEGER]) expect(decodeCursorRecord(encodeCursorRecord(position))).toBe(position);
  });

  it('refuses anything but exactly one whole record', () => {
    const record = encodeCursorRecord(7);
    expect(decodeCursorRecord(record.subarray(0, 29))).toBeUndefined();
    expect(decodeCursorRecord(Buffer.concat([record, Buffer.from('x')]))).toBeUndefined();
    expect(decodeCursorRecord(Buffer.from('00000000000000000007 00000000\n'))).toBeUndefined();
    expect(decodeCursorRecord(Buffer.from('0000000000000000007 a0b1c2d3\n\n'))).toBeUndefined();
    const torn = Buffer.concat([encodeCursorRecord(10).subarray(0, 19), encodeCursorRecord(9).subarray(19)]);
    expect(decodeCursorRecord(torn)).toBeUndefined();
  });
});

describe('checkConsumerName', () => {
  it('returns a valid name and refuses others with ERR_FILEBUS_INVALID_OPTION naming the rule', () => {
    expect(checkConsumerName('alice')).toBe('alice');
    expect(() => checkConsumerName('.alice')).toThrow(expect.objectContaining({ code: 'ERR_FILEBUS_INVALID_OPTION', message: expect.stringContaining('not starting with') }));
    expect(() => checkConsumerName('~anon')).toThrow(expect.objectContaining({ code: 'ERR_FILEBUS_INVALID_OPTION' }));
  });
});

/** FILE.consumers/ of a bus in a fresh directory, and a temporary name for a cursor to be born under. */
function consumers(): { dir: string; temp: () => string } {
  const paths = busPaths(tmp.bus);
  const dir = `${paths.file}.consumers`;
  fs.mkdirSync(dir);
  return { dir, temp: () => tempPath(paths) };
}

describe('cursor files', () => {
  it('a new cursor holds its position on disk, is held while open, and advances', () => {
    const { dir, temp } = consumers();
    const cursor = OwnedCursor.create(dir, 'alice', 3, undefined, flockLiveness, temp());
    try {
      expect(fs.readFileSync(path.join(dir, 'alice.cursor'))).toEqual(encodeCursorRecord(3));
      expect(scanCursors(dir, flockLiveness)).toEqual([{ id: 'alice', name: 'alice.cursor', file: path.join(dir, 'alice.cursor'), position: 3, live: true }]);
      cursor.advance(9);
      expect(scanCursors(dir, flockLiveness)[0]?.position).toBe(9);
      expect(cursor.isInPlace()).toBe(true);
      // Its temporary name is gone: only the cursor is left.
      expect(fs.readdirSync(path.dirname(dir)).filter((n) => n.endsWith('.new'))).toEqual([]);
    } finally {
      cursor.close();
    }
  });

  it('a second consumer of the same name is refused while the first runs, and resumes where it left', () => {
    const { dir, temp } = consumers();
    const first = OwnedCursor.create(dir, 'alice', 4, undefined, flockLiveness, temp());
    expect(() => OwnedCursor.open(dir, 'alice', flockLiveness)).toThrow(expect.objectContaining({ code: 'ERR_FILEBUS_CONSUMER' }));
    expect(() => OwnedCursor.create(dir, 'alice', 1, undefined, flockLiveness, temp())).toThrow();
    first.advance(6);
    first.close();
    // A named cursor stays, dead, holding its position.
    expect(scanCursors(dir, flockLiveness)).toMatchObject([{ id: 'alice', position: 6, live: false }]);
    const again = OwnedCursor.open(dir, 'alice', flockLiveness);
    expect(again?.position).toBe(6);
    again?.close();
    expect(OwnedCursor.open(dir, 'bob', flockLiveness)).toBeUndefined();
  });

  it('an anonymous cursor goes when its consumer closes; one left by a dead consumer goes only when a scan sweeps', () => {
    const { dir, temp } = consumers();
    const closing = OwnedCursor.create(dir, anonymousId(), 1, undefined, flockLiveness, temp());
    closing.close();
    expect(listCursorFiles(dir)).toEqual([]);
    // A dead anonymous consumer's cursor: a whole record nobody holds.
    const dead = `${anonymousId()}.cursor`;
    fs.writeFileSync(path.join(dir, dead), encodeCursorRecord(2));
    expect(scanCursors(dir, flockLiveness)).toMatchObject([{ name: dead, live: false, position: 2 }]);
    expect(scanCursors(dir, flockLiveness, { sweep: true })).toEqual([]);
    expect(listCursorFiles(dir)).toEqual([]);
  });

  it('a damaged cursor is ERR_FILEBUS_CORRUPT naming it; a dead empty one is skipped', () => {
    const { dir } = consumers();
    fs.writeFileSync(path.join(dir, 'empty.cursor'), '');
    expect(scanCursors(dir, flockLiveness)).toEqual([]);
    const damaged = path.join(dir, 'bob.cursor');
    fs.writeFileSync(damaged, '00000000000000000005 00000000\n');
    expect(() => scanCursors(dir, flockLiveness)).toThrow(expect.objectContaining({ code: 'ERR_FILEBUS_CORRUPT', path: damaged }));
    fs.writeFileSync(damaged, Buffer.concat([encodeCursorRecord(5), Buffer.from('trailing')]));
    expect(() => scanCursors(dir, flockLiveness)).toThrow(expect.objectContaining({ code: 'ERR_FILEBUS_CORRUPT' }));
  });

  it('scans only the names asked for, and only cursor names', () => {
    const { dir } = consumers();
    for (const id of ['a', 'b']) fs.writeFileSync(path.join(dir, `${id}.cursor`), encodeCursorRecord(1));
    fs.writeFileSync(path.join(dir, '.hidden.cursor'), 'not a record');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'not a cursor');
    expect(listCursorFiles(dir).sort()).toEqual(['a.cursor', 'b.cursor']);
    expect(scanCursors(dir, flockLiveness, { only: ['b.cursor', 'gone.cursor', 'notes.txt'] }).map((s) => s.id)).toEqual(['b']);
  });

  it('a missing directory has no cursors; a file in its place is ERR_FILEBUS_BAD_PATH', () => {
    const dir = path.join(tmp.dir, 'bus.consumers');
    expect(scanCursors(dir, flockLiveness)).toEqual([]);
    fs.writeFileSync(dir, '');
    expect(() => listCursorFiles(dir)).toThrow(expect.objectContaining({ code: 'ERR_FILEBUS_BAD_PATH', path: dir }));
  });

  it('removeCursor refuses a running consumer, removes a stopped one, and says when there was none', () => {
    const { dir, temp } = consumers();
    const cursor = OwnedCursor.create(dir, 'alice', 1, undefined, flockLiveness, temp());
    expect(() => removeCursor(dir, 'alice', flockLiveness)).toThrow(expect.objectContaining({ code: 'ERR_FILEBUS_CONSUMER' }));
    cursor.close();
    expect(removeCursor(dir, 'alice', flockLiveness)).toBe(true);
    expect(removeCursor(dir, 'alice', flockLiveness)).toBe(false);
  });
});
