/**
 * Multicast segments (src/wire/segments.ts) in a real FILE.segments/: a
 * segment is only ever read when its bytes match the checksum in its name.
 */
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { busPaths, parseSegmentName, segmentName, segmentsDir, type SegmentRef } from '../../src/wire/layout.js';
import { checksum, ensureMulticastDirs, isEndMarker, listSegments, readSegment, removeSegment } from '../../src/wire/segments.js';
import { useBusDir } from '../helpers/bus-dir.js';

const tmp = useBusDir('filebus-wire-');

function segmentsIn(): string {
  const paths = busPaths(tmp.bus);
  ensureMulticastDirs(paths, undefined);
  return segmentsDir(paths);
}

/** Writes chunk `seq` as a filebus producer would name it; returns its ref. */
function put(dir: string, seq: number, data: Buffer, crc = crc32(data) >>> 0): SegmentRef {
  const name = segmentName(seq, crc);
  fs.writeFileSync(path.join(dir, name), data);
  return parseSegmentName(name)!;
}

describe('checksum', () => {
  it('is zlib\'s CRC-32 of the chunk, whatever buffers it came in', () => {
    const data = Buffer.from('123456789');
    expect(checksum([data])).toBe(0xcbf43926);
    expect(checksum([data.subarray(0, 2), Buffer.alloc(0), data.subarray(2)])).toBe(0xcbf43926);
    expect(checksum([])).toBe(0);
  });
});

describe('reading a segment', () => {
  it('gives the bytes of a segment whose checksum matches', () => {
    const dir = segmentsIn();
    const data = Buffer.from('a chunk\n');
    expect(readSegment(dir, put(dir, 1, data))).toEqual(data);
  });

  it('refuses a segment whose bytes differ from its name\'s checksum, naming it', () => {
    const dir = segmentsIn();
    const ref = put(dir, 1, Buffer.from('a chunk\n'));
    const file = path.join(dir, ref.name);
    fs.writeFileSync(file, 'a chunK\n');
    expect(() => readSegment(dir, ref)).toThrow(expect.objectContaining({ code: 'ERR_FILEBUS_CORRUPT', path: file }));
    fs.writeFileSync(file, 'a chu'); // cut short
    expect(() => readSegment(dir, ref)).toThrow(expect.objectContaining({ code: 'ERR_FILEBUS_CORRUPT' }));
  });

  it('a segment gone is undefined; a directory or symlink at its name is refused', () => {
    const dir = segmentsIn();
    const ref = put(dir, 1, Buffer.from('x'));
    removeSegment(dir, ref);
    expect(readSegment(dir, ref)).toBeUndefined();
    removeSegment(dir, ref); // already gone: no error
    fs.mkdirSync(path.join(dir, ref.name));
    expect(() => readSegment(dir, ref)).toThrow(expect.objectContaining({ code: 'ERR_FILEBUS_CORRUPT' }));
    const other = parseSegmentName(segmentName(2, crc32(Buffer.from('secret')) >>> 0))!;
    fs.writeFileSync(path.join(path.dirname(dir), 'secret'), 'secret');
    fs.symlinkSync(path.join(path.dirname(dir), 'secret'), path.join(dir, other.name));
    expect(() => readSegment(dir, other)).toThrow(expect.objectContaining({ path: path.join(dir, other.name) }));
  });
});

describe('listing and end markers', () => {
  it('lists segments oldest first, ignoring every other name', () => {
    const dir = segmentsIn();
    for (const seq of [10, 2, 1, 3]) put(dir, seq, Buffer.from(`chunk ${seq}`));
    for (const name of ['README', '.00000000000000000004.00000000', '00000000000000000005.0000000', `${segmentName(6, 0)}.new`]) {
      fs.writeFileSync(path.join(dir, name), '');
    }
    expect(listSegments(dir).map((ref) => ref.seq)).toEqual([1, 2, 3, 10]);
  });

  it('an empty segment is an end marker; a chunk with bytes whose checksum happens to be 0 is not', () => {
    const dir = segmentsIn();
    expect(isEndMarker(dir, put(dir, 1, Buffer.alloc(0)))).toBe(true);
    // A non-empty segment named with checksum 0 (it would fail its read): not a marker either.
    expect(isEndMarker(dir, put(dir, 2, Buffer.from('data'), 0))).toBe(false);
    expect(isEndMarker(dir, put(dir, 3, Buffer.from('data')))).toBe(false);
  });

  it('no directory: no segments; a file in its place is ERR_FILEBUS_BAD_PATH, and ensureMulticastDirs refuses it too', () => {
    const paths = busPaths(tmp.bus);
    expect(listSegments(segmentsDir(paths))).toEqual([]);
    fs.writeFileSync(segmentsDir(paths), 'not a directory\n');
    expect(() => listSegments(segmentsDir(paths))).toThrow(expect.objectContaining({ code: 'ERR_FILEBUS_BAD_PATH', path: segmentsDir(paths) }));
    expect(() => ensureMulticastDirs(paths, undefined)).toThrow(expect.objectContaining({ code: 'ERR_FILEBUS_BAD_PATH' }));
  });
});
