/**
 * Where consumer output goes: every byte is counted and timed, and either
 * checksummed (CRC-32, compared with the input's) or parsed as the records
 * a driver sent (latency and loss cases), each record checked whole.
 * The baselines (cat, tee) write into the same sinks.
 */
import type { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { parseRecord, record } from '../../test/helpers/records.js';
import { now } from './procs.js';

export interface RecordParser {
  push(data: Buffer, at: bigint): void;
  /** Bytes of a record begun but not finished. */
  readonly pendingBytes: number;
}

export class Sink {
  readonly name: string;
  bytes = 0;
  /** Bytes that went to the checksum (all of them unless a parser took some). */
  hashedBytes = 0;
  crc = 0;
  firstAt: bigint | undefined;
  lastAt: bigint | undefined;
  /** While set, data goes to the parser instead of the checksum. */
  parser: RecordParser | undefined;
  readonly done: Promise<void>;

  constructor(name: string, stream: Readable, parser?: RecordParser) {
    this.name = name;
    this.parser = parser;
    stream.on('data', (data: Buffer) => {
      const at = now();
      this.firstAt ??= at;
      this.lastAt = at;
      this.bytes += data.length;
      if (this.parser) {
        this.parser.push(data, at);
      } else {
        this.crc = crc32(data, this.crc);
        this.hashedBytes += data.length;
      }
    });
    this.done = new Promise<void>((resolve) => {
      stream.once('close', () => resolve());
      stream.once('end', () => resolve());
      stream.once('error', () => resolve());
    });
  }

  /** Whether what was checksummed is exactly `expected`. */
  matches(expected: { bytes: number; crc: number }): boolean {
    return this.hashedBytes === expected.bytes && this.crc >>> 0 === expected.crc >>> 0;
  }

  describeMismatch(expected: { bytes: number; crc: number }): string {
    return `${this.name}: got ${this.hashedBytes} bytes, crc32 ${hex(this.crc)}; expected ${expected.bytes} bytes, crc32 ${hex(expected.crc)}`;
  }
}

function hex(crc: number): string {
  return (crc >>> 0).toString(16).padStart(8, '0');
}

/** A filler that differs per record, so a record cut, shifted or mixed with another does not verify. */
const FILL = Buffer.from('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'.repeat(80), 'latin1');

// ---------------------------------------------------------------------------
// Latency records: 100 bytes, `L` (measured) or `W` (warm-up), a sequence
// number, `T`, the send time in ns of process.hrtime (CLOCK_MONOTONIC), a
// filler depending on the sequence number, and a newline.

export const LATENCY_RECORD = 100;
const LAT_HEAD = 1 + 9 + 1 + 20;
const LAT_FILL = LATENCY_RECORD - LAT_HEAD - 1;

export function latencyRecord(kind: 'L' | 'W', seq: number, sentNs: bigint): Buffer {
  const head = `${kind}${String(seq).padStart(9, '0')}T${sentNs.toString().padStart(20, '0')}`;
  const record = Buffer.allocUnsafe(LATENCY_RECORD);
  record.write(head, 0, 'latin1');
  FILL.copy(record, LAT_HEAD, seq % 61, (seq % 61) + LAT_FILL);
  record[LATENCY_RECORD - 1] = 0x0a;
  return record;
}

export class LatencyParser implements RecordParser {
  /** Measured sequence number → latency in ns. */
  readonly latencyNs = new Map<number, number>();
  warmSeen = 0;
  corrupt = 0;
  duplicates = 0;
  #pending: Buffer = Buffer.alloc(0);

  get pendingBytes(): number {
    return this.#pending.length;
  }

  get measured(): number {
    return this.latencyNs.size;
  }

  push(data: Buffer, at: bigint): void {
    let buffer = this.#pending.length ? Buffer.concat([this.#pending, data]) : data;
    let offset = 0;
    while (buffer.length - offset >= LATENCY_RECORD) {
      this.#record(buffer.subarray(offset, offset + LATENCY_RECORD), at);
      offset += LATENCY_RECORD;
    }
    buffer = buffer.subarray(offset);
    this.#pending = Buffer.from(buffer);
  }

  #record(record: Buffer, at: bigint): void {
    const kind = String.fromCharCode(record[0]!);
    const head = record.toString('latin1', 0, LAT_HEAD);
    const match = /^([LW])(\d{9})T(\d{20})$/.exec(head);
    const seq = match ? Number(match[2]) : -1;
    const valid = match !== null && record[LATENCY_RECORD - 1] === 0x0a &&
      record.subarray(LAT_HEAD, LAT_HEAD + LAT_FILL).equals(FILL.subarray(seq % 61, (seq % 61) + LAT_FILL));
    if (!valid) {
      this.corrupt += 1;
      return;
    }
    if (kind === 'W') {
      this.warmSeen += 1;
      return;
    }
    if (this.latencyNs.has(seq)) {
      this.duplicates += 1;
      return;
    }
    this.latencyNs.set(seq, Number(at - BigInt(match[3]!)));
  }
}

// ---------------------------------------------------------------------------
// Loss records: the tests' tagged records (test/helpers/records.ts), tag C,
// numbered from 0, 4 KiB each. Written by paced-writer.ts.

export const LOSS_RECORD = 4096;

export function lossRecord(n: number): Buffer {
  return record('C', n, LOSS_RECORD);
}

export class LossParser implements RecordParser {
  readonly seen = new Set<number>();
  corrupt = 0;
  duplicates = 0;
  records = 0;
  #pending: Buffer = Buffer.alloc(0);

  get pendingBytes(): number {
    return this.#pending.length;
  }

  push(data: Buffer): void {
    const buffer = this.#pending.length ? Buffer.concat([this.#pending, data]) : data;
    let offset = 0;
    while (buffer.length - offset >= LOSS_RECORD) {
      this.#record(buffer.subarray(offset, offset + LOSS_RECORD));
      offset += LOSS_RECORD;
    }
    this.#pending = Buffer.from(buffer.subarray(offset));
  }

  #record(data: Buffer): void {
    this.records += 1;
    let n: number;
    try {
      const parsed = parseRecord(data);
      if (parsed.tag !== 'C') throw new Error(`tag ${parsed.tag}`);
      n = parsed.seq;
    } catch {
      this.corrupt += 1;
      return;
    }
    if (this.seen.has(n)) this.duplicates += 1;
    else this.seen.add(n);
  }
}
