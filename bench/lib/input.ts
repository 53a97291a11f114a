/** Input files of random bytes, made once per run, with their CRC-32 for checking consumer output. */
import { randomFillSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { MiB } from './stats.js';

export interface InputFile {
  readonly path: string;
  readonly bytes: number;
  readonly crc: number;
}

export class Inputs {
  readonly #dir: string;
  readonly #made = new Map<number, InputFile>();

  constructor(dir: string) {
    this.#dir = dir;
    fs.mkdirSync(dir, { recursive: true });
  }

  /** A file of `bytes` random bytes (made on first use, then reused). */
  get(bytes: number): InputFile {
    const made = this.#made.get(bytes);
    if (made) return made;
    const file = path.join(this.#dir, `input-${bytes}.bin`);
    const block = Buffer.allocUnsafe(Math.min(bytes, 8 * MiB));
    const fd = fs.openSync(file, 'w');
    let crc = 0;
    try {
      for (let left = bytes; left > 0;) {
        const piece = block.subarray(0, Math.min(left, block.length));
        randomFillSync(piece);
        crc = crc32(piece, crc);
        for (let off = 0; off < piece.length;) off += fs.writeSync(fd, piece, off);
        left -= piece.length;
      }
      // Written back now, not by the kernel's flusher threads during the first
      // cases' runs (30 s later, taking CPU from whichever run is on).
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    const input = { path: file, bytes, crc: crc >>> 0 };
    this.#made.set(bytes, input);
    return input;
  }

  /** Removes an input no longer needed, to give its page cache back. */
  drop(bytes: number): void {
    const made = this.#made.get(bytes);
    if (!made) return;
    fs.rmSync(made.path, { force: true });
    this.#made.delete(bytes);
  }
}
