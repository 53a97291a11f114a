/**
 * The harness's own analysis: what it calls repeated, missing or garbage
 * must be what the consumers wrote, or a failure of the suite means nothing.
 * (Needs no mounts.)
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { segmentsOf } from './harness.js';

const BLOCK = 1024;

function blocks(input: Buffer, ...numbers: number[]): Buffer {
  return Buffer.concat(numbers.map((n) => input.subarray(n * BLOCK, (n + 1) * BLOCK)));
}

describe('segmentsOf', () => {
  it('splits at a chunk boundary when the next chunk delivered starts with the byte that follows the one before', () => {
    const input = randomBytes(16 * BLOCK);
    // Block 13 is delivered after block 9; its first bytes equal block 10's.
    input[13 * BLOCK] = input[10 * BLOCK]!;
    input[13 * BLOCK + 1] = input[10 * BLOCK + 1]!;
    input[13 * BLOCK + 2] = (input[10 * BLOCK + 2]! + 1) % 256;
    expect(segmentsOf(input, blocks(input, 8, 9, 13, 14), BLOCK)).toEqual([
      { from: 8 * BLOCK, length: 2 * BLOCK },
      { from: 13 * BLOCK, length: 2 * BLOCK },
    ]);
  });

  it('keeps runs that start inside a block where the bytes say they do', () => {
    const input = randomBytes(16 * BLOCK);
    input[3000] = (input[500]! + 1) % 256;
    const output = Buffer.concat([input.subarray(100, 500), input.subarray(3000, 3500)]);
    expect(segmentsOf(input, output, BLOCK)).toEqual([
      { from: 100, length: 400 },
      { from: 3000, length: 500 },
    ]);
  });

  it('reports a repeated block as a run that goes backwards, and foreign bytes as unmatched', () => {
    const input = randomBytes(8 * BLOCK);
    input[3 * BLOCK] = 1; // no accidental match for the zeros that follow block 2
    const output = Buffer.concat([blocks(input, 0, 1, 1, 2), Buffer.alloc(64, 0)]);
    expect(segmentsOf(input, output, BLOCK)).toEqual([
      { from: 0, length: 2 * BLOCK },
      { from: BLOCK, length: 2 * BLOCK },
      { from: -1, length: 32 },
      { from: -1, length: 32 },
    ]);
  });
});
