import fs from 'node:fs';
import { crc32 } from 'node:zlib';

/**
 * The checksummed record that multicast cursors (cursor-file.ts) and
 * producer registrations (producer-registry.ts) hold: one line,
 *
 *     <payload> <CRC-32 of the payload's bytes, 8 lowercase hex digits>\n
 *
 * Its owner rewrites it in place (a write at offset 0) while others read
 * it without a lock, so a reader can see part of the old record and part
 * of the new one; the checksum tells such a torn record from a whole one,
 * and the reader reads again. What follows the newline is not part of the
 * record.
 */

const SPACE = 0x20;
const NEWLINE = 0x0a;
const HEX_DIGITS = 8;
const CHECKSUM = /^[0-9a-f]{8}$/;

/** How often a reader reads again a record that does not decode before it gives up. */
const READ_ATTEMPTS = 3;

function checksumOf(bytes: Uint8Array): string {
  return (crc32(bytes) >>> 0).toString(16).padStart(HEX_DIGITS, '0');
}

/** The record holding `payload` (which must not hold a newline). */
export function encodeRecord(payload: string): Buffer {
  const bytes = Buffer.from(payload, 'utf8');
  return Buffer.concat([bytes, Buffer.from(` ${checksumOf(bytes)}\n`, 'latin1')]);
}

/**
 * The payload of the record at the start of `data`; undefined when there
 * is no whole line, or its checksum does not match its payload (torn, or
 * not a record at all).
 */
export function decodeRecord(data: Buffer): string | undefined {
  const end = data.indexOf(NEWLINE);
  if (end < HEX_DIGITS + 1 || data[end - HEX_DIGITS - 1] !== SPACE) return undefined;
  const sum = data.subarray(end - HEX_DIGITS, end).toString('latin1');
  if (!CHECKSUM.test(sum)) return undefined;
  const payload = data.subarray(0, end - HEX_DIGITS - 1);
  return checksumOf(payload) === sum ? payload.toString('utf8') : undefined;
}

/**
 * Reads what the open file `fd` holds from offset 0 (at most `length`
 * bytes) and decodes it with `decode`, which returns undefined for bytes
 * that are not a whole record. Such a read may have raced the owner's
 * rewrite, so it reads again, a few times, before answering undefined. An
 * empty file is answered at once: a record is written whole before its
 * file gets its name, so nobody is writing one there. Read errors are the
 * caller's.
 */
export function readRecord<T>(fd: number, length: number, decode: (data: Buffer) => T | undefined): T | undefined {
  const buffer = Buffer.alloc(length);
  for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
    const n = fs.readSync(fd, buffer, 0, length, 0);
    if (n === 0) return undefined;
    const value = decode(buffer.subarray(0, n));
    if (value !== undefined) return value;
  }
  return undefined;
}
