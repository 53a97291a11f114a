/**
 * Taken chunks and the spare (src/wire/taken-chunk.ts, spare-chunk.ts) in a
 * real bus directory: a back-pressure chunk leaves the bus only once
 * delivered; taken and not delivered, it is given back at FILE or
 * abandoned to the next consumer. Two descriptors of one process exclude
 * each other's flocks as two processes do, so "another consumer" here is
 * another descriptor.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { busPaths, isTakenName, type BusPaths } from '../../src/wire/layout.js';
import { keepAsSpare, removeDelivered } from '../../src/wire/spare-chunk.js';
import { abandonTaken, adoptAbandoned, finishTaken, giveBackTaken, takeChunk, takenNames } from '../../src/wire/taken-chunk.js';
import { useBusDir } from '../helpers/bus-dir.js';

const tmp = useBusDir('filebus-wire-');

function busWith(chunk?: string): BusPaths {
  const paths = busPaths(tmp.bus);
  if (chunk !== undefined) fs.writeFileSync(paths.file, chunk);
  return paths;
}

describe('taking FILE', () => {
  it('moves the chunk to a taken name of ours, held, and frees FILE for the next publish', () => {
    const paths = busWith('chunk 1');
    const taken = takeChunk(paths)!;
    expect(fs.existsSync(paths.file)).toBe(false);
    expect(isTakenName(paths, path.basename(taken.path))).toBe(true);
    expect(fs.readFileSync(taken.path, 'utf8')).toBe('chunk 1');
    expect(taken.size).toBe(7);
    // Held: another consumer adopting finds it held, and counts it.
    expect(adoptAbandoned(paths)).toEqual({ adopted: [], held: 1 });
    abandonTaken(taken);
  });

  it('is nothing when there is no FILE', () => {
    expect(takeChunk(busWith())).toBeUndefined();
  });
});

describe('a chunk taken and not delivered', () => {
  it('given back while FILE is free: it is FILE again, and no taken name is left', () => {
    const paths = busWith('chunk 1');
    const taken = takeChunk(paths)!;
    expect(giveBackTaken(paths, taken)).toBe(true);
    expect(fs.readFileSync(paths.file, 'utf8')).toBe('chunk 1');
    expect(takenNames(paths)).toEqual([]);
  });

  it('given back after a newer chunk was published: FILE keeps the newer one, and the next consumer adopts the old one', () => {
    const paths = busWith('chunk 1');
    const taken = takeChunk(paths)!;
    fs.writeFileSync(paths.file, 'chunk 2');
    expect(giveBackTaken(paths, taken)).toBe(false);
    expect(fs.readFileSync(paths.file, 'utf8')).toBe('chunk 2');
    const { adopted, held } = adoptAbandoned(paths);
    expect(held).toBe(0);
    expect(adopted.map((chunk) => fs.readFileSync(chunk.path, 'utf8'))).toEqual(['chunk 1']);
    for (const chunk of adopted) abandonTaken(chunk);
  });

  it('abandoned: adopted by the next consumer, oldest taken first, and never while its holder runs', async () => {
    const paths = busWith('chunk 1');
    const first = takeChunk(paths)!;
    // ctime orders adoption: let the clock move between the takes.
    await new Promise((resolve) => setTimeout(resolve, 20));
    fs.writeFileSync(paths.file, 'chunk 2');
    const second = takeChunk(paths)!;
    fs.writeFileSync(paths.file, '');
    const marker = takeChunk(paths)!;
    expect(adoptAbandoned(paths, marker)).toEqual({ adopted: [], held: 2 });
    abandonTaken(second);
    abandonTaken(first);
    const { adopted, held } = adoptAbandoned(paths, marker);
    // The end marker's holder still runs; markers are not counted as held data.
    expect(held).toBe(0);
    expect(adopted.map((chunk) => fs.readFileSync(chunk.path, 'utf8'))).toEqual(['chunk 1', 'chunk 2']);
    expect(takenNames(paths, marker)).toHaveLength(2);
    for (const chunk of [...adopted, marker]) abandonTaken(chunk);
  });
});

describe('a chunk delivered', () => {
  it('becomes the spare when it has bytes (Linux), and is removed when it is the end marker', () => {
    const paths = busWith('chunk 1');
    finishTaken(paths, takeChunk(paths)!);
    expect(takenNames(paths)).toEqual([]);
    if (process.platform === 'linux') expect(fs.readFileSync(paths.spare, 'utf8')).toBe('chunk 1');
    fs.rmSync(paths.spare, { force: true });
    fs.writeFileSync(paths.file, '');
    finishTaken(paths, takeChunk(paths)!);
    expect(fs.readdirSync(paths.dir)).toEqual([]);
  });

  it('keepAsSpare replaces an older spare; removeDelivered removes the file, and a file already gone is no error', () => {
    const paths = busWith('chunk 1');
    fs.writeFileSync(paths.spare, 'older');
    keepAsSpare(paths, paths.file);
    expect(fs.existsSync(paths.file)).toBe(false);
    if (process.platform === 'linux') expect(fs.readFileSync(paths.spare, 'utf8')).toBe('chunk 1');
    fs.writeFileSync(paths.file, 'chunk 2');
    removeDelivered(paths.file);
    expect(fs.existsSync(paths.file)).toBe(false);
    expect(() => removeDelivered(paths.file)).not.toThrow();
  });
});
