/**
 * The record codec of the tests: self-checking tagged records, so that a
 * consumer's output alone tells which stream (tag) each record came from,
 * in which order (sequence number), and whether any record was cut,
 * spliced with another or repeated.
 *
 * A record of `size` bytes (RECORD_SIZE unless a test needs another):
 *
 *     <tag>:<seq, 10 digits>:<filler>:<CRC-32 of everything before the last colon, 8 hex digits>\n
 *
 * The tag is one or more characters other than ':' and newline; the filler
 * depends on tag and sequence number, and the checksum catches the rest.
 *
 * On top of records, chunks (for the fault suite): chunk i of a tag is
 * records i*K .. i*K+K-1, so a stream of whole chunks can be checked chunk
 * by chunk as it arrives (ChunkReader).
 */
import { crc32 } from 'node:zlib';

export const RECORD_SIZE = 32;

/** Bytes besides the tag and the filler: ':' seq ':' ... ':' crc '\n'. */
const OVERHEAD = 1 + 10 + 1 + 1 + 8 + 1;

export interface Tagged {
  readonly tag: string;
  readonly seq: number;
}

/** Record `seq` of stream `tag`. */
export function record(tag: string, seq: number, size = RECORD_SIZE): Buffer {
  if (tag.length === 0 || /[:\n]/.test(tag)) throw new Error(`bad record tag ${JSON.stringify(tag)}`);
  if (size < tag.length + OVERHEAD) throw new Error(`a record of tag ${JSON.stringify(tag)} needs at least ${tag.length + OVERHEAD} bytes, not ${size}`);
  const out = Buffer.allocUnsafe(size);
  const head = out.write(`${tag}:${String(seq).padStart(10, '0')}:`, 0, 'latin1');
  out.fill(97 + ((seq + tag.charCodeAt(tag.length - 1)) % 26), head, size - 10);
  out.write(`:${(crc32(out.subarray(0, size - 10)) >>> 0).toString(16).padStart(8, '0')}\n`, size - 10, 'latin1');
  return out;
}

/** Records first .. first+count-1 of `tag`, back to back. */
export function records(tag: string, count: number, options: { first?: number; size?: number } = {}): Buffer {
  const { first = 0, size = RECORD_SIZE } = options;
  const out = Buffer.allocUnsafe(count * size);
  for (let i = 0; i < count; i++) record(tag, first + i, size).copy(out, i * size);
  return out;
}

/** Parses one whole record; throws naming what is wrong with it. */
export function parseRecord(buf: Buffer): Tagged {
  const size = buf.length;
  const t = buf.indexOf(0x3a);
  const shown = (): string => JSON.stringify(buf.toString('latin1', 0, Math.min(48, size)));
  if (t < 1 || size < t + OVERHEAD || buf[t + 11] !== 0x3a || buf[size - 10] !== 0x3a || buf[size - 1] !== 0x0a) {
    throw new Error(`malformed record ${shown()}`);
  }
  if ((crc32(buf.subarray(0, size - 10)) >>> 0) !== parseInt(buf.toString('latin1', size - 9, size - 1), 16)) {
    throw new Error(`record fails its checksum: ${shown()}`);
  }
  const seqText = buf.toString('latin1', t + 1, t + 11);
  if (!/^\d{10}$/.test(seqText)) throw new Error(`bad sequence number in record ${shown()}`);
  return { tag: buf.toString('latin1', 0, t), seq: Number(seqText) };
}

/** Splits output into records of `size` bytes and checks each; throws on a partial or bad one, naming its offset. */
export function parseRecords(output: Buffer, size = RECORD_SIZE): Tagged[] {
  if (output.length % size !== 0) {
    throw new Error(`output of ${output.length} bytes is not a whole number of ${size}-byte records`);
  }
  const result: Tagged[] = [];
  for (let offset = 0; offset < output.length; offset += size) {
    try {
      result.push(parseRecord(output.subarray(offset, offset + size)));
    } catch (error) {
      throw new Error(`at byte ${offset}: ${(error as Error).message}`);
    }
  }
  return result;
}

/** The sequence numbers of one tag, in output order. */
export function seqsOf(parsed: readonly Tagged[], tag: string): number[] {
  return parsed.filter((r) => r.tag === tag).map((r) => r.seq);
}

export function range(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i);
}

export function isIncreasing(values: readonly number[]): boolean {
  return values.every((v, i) => i === 0 || v > values[i - 1]!);
}

// -------------------------------------------------------------------- chunks

export interface Format {
  /** Bytes per record. */
  readonly recordSize: number;
  /** Records per chunk. */
  readonly perChunk: number;
}

export interface ChunkRef {
  readonly tag: string;
  readonly index: number;
}

export function chunkBytes(format: Format): number {
  return format.recordSize * format.perChunk;
}

/** Chunk `index` of stream `tag`: records index*K .. index*K+K-1. */
export function chunk(format: Format, tag: string, index: number): Buffer {
  return records(tag, format.perChunk, { first: index * format.perChunk, size: format.recordSize });
}

/** Chunks first .. first+count-1 of `tag`, back to back. */
export function chunks(format: Format, tag: string, count: number, first = 0): Buffer {
  return records(tag, count * format.perChunk, { first: first * format.perChunk, size: format.recordSize });
}

/** Checks one whole chunk and says which it is. */
export function checkChunk(buf: Buffer, format: Format): ChunkRef {
  const { recordSize, perChunk } = format;
  let first: Tagged | undefined;
  for (let i = 0; i < perChunk; i++) {
    const r = parseRecord(buf.subarray(i * recordSize, (i + 1) * recordSize));
    if (!first) {
      if (r.seq % perChunk !== 0) throw new Error(`chunk does not start on a chunk boundary: ${r.tag} record ${r.seq}`);
      first = r;
    } else if (r.tag !== first.tag || r.seq !== first.seq + i) {
      throw new Error(`torn chunk: record ${i} of chunk ${first.tag}#${first.seq / perChunk} is ${r.tag} record ${r.seq}`);
    }
  }
  return { tag: first!.tag, index: first!.seq / perChunk };
}

/**
 * Splits a stream of whole chunks as it arrives. Each complete chunk is
 * checked: every record intact, one tag, consecutive sequence numbers
 * starting at a multiple of K. Bytes after the last whole chunk are kept as
 * `pending` (what a killed consumer got out of the chunk it was writing).
 * The first problem is kept in `error` (never thrown from a data handler).
 */
export class ChunkReader {
  readonly format: Format;
  readonly chunks: ChunkRef[] = [];
  bytes = 0;
  error: Error | undefined;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  readonly #onChunk: ((ref: ChunkRef) => void) | undefined;

  constructor(format: Format, onChunk?: (ref: ChunkRef) => void) {
    this.format = format;
    this.#onChunk = onChunk;
  }

  get pending(): Buffer {
    return Buffer.concat(this.#pending);
  }

  push(data: Buffer): void {
    this.bytes += data.length;
    if (this.error) return;
    const size = chunkBytes(this.format);
    this.#pending.push(data);
    this.#pendingBytes += data.length;
    if (this.#pendingBytes < size) return;
    let buf = Buffer.concat(this.#pending);
    let off = 0;
    try {
      while (buf.length - off >= size) {
        const ref = checkChunk(buf.subarray(off, off + size), this.format);
        this.chunks.push(ref);
        this.#onChunk?.(ref);
        off += size;
      }
    } catch (error) {
      this.error = new Error(`at output byte ${this.bytes - (buf.length - off)}: ${(error as Error).message}`);
    }
    buf = buf.subarray(off);
    this.#pending = buf.length > 0 ? [Buffer.from(buf)] : [];
    this.#pendingBytes = buf.length;
  }
}
