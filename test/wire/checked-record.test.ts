/**
 * The checked record (src/wire/checked-record.ts) that cursors and producer
 * registrations hold: `<payload> <CRC-32, 8 lowercase hex>\n`. Readers race
 * the owner's in-place rewrites, so a torn record must never decode.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeRecord, encodeRecord, readRecord } from '../../src/wire/checked-record.js';
import { useBusDir } from '../helpers/bus-dir.js';

const tmp = useBusDir('filebus-wire-');

describe('encodeRecord', () => {
  it('appends the CRC-32 of the payload: the standard check value for "123456789"', () => {
    expect(encodeRecord('123456789').toString('latin1')).toBe('123456789 cbf43926\n');
  });

  it('writes the registration record docs/protocol.md shows, byte for byte', () => {
    const json = '{"mode":"lossy","host":"web1","pid":4242,"started":1700000000000,"chunks":120,"bytes":7864320,"last":1700000012345}';
    expect(encodeRecord(json).toString('utf8')).toBe(`${json} e6f23407\n`);
  });

  it('checksums the UTF-8 bytes of the payload', () => {
    const record = encodeRecord('{"host":"zürich"}');
    expect(record.subarray(0, record.length - 10).equals(Buffer.from('{"host":"zürich"}', 'utf8'))).toBe(true);
    expect(decodeRecord(record)).toBe('{"host":"zürich"}');
  });
});

describe('decodeRecord', () => {
  it('reads back what encodeRecord wrote', () => {
    for (const payload of ['', '0', '00000000000000000042', '{"a":[1,2,3]}', 'with spaces and \u00e9']) {
      expect(decodeRecord(encodeRecord(payload))).toBe(payload);
    }
  });

  it('stops at the first newline: what follows is no part of the record', () => {
    expect(decodeRecord(Buffer.concat([encodeRecord('abc'), Buffer.from('left over from a longer record\n')]))).toBe('abc');
  });

  it('refuses a record torn by a rewrite: the new record\'s start over the old one\'s end', () => {
    const before = encodeRecord('00000000000000000199');
    const after = encodeRecord('00000000000000000200');
    expect(before).toHaveLength(after.length);
    for (let cut = 1; cut < after.length; cut++) {
      const torn = Buffer.concat([after.subarray(0, cut), before.subarray(cut)]);
      if (torn.equals(before) || torn.equals(after)) continue;
      expect(decodeRecord(torn), `cut at ${cut}`).toBeUndefined();
    }
  });

  it('refuses a record cut short, a wrong checksum, and anything not in the format', () => {
    const whole = encodeRecord('payload');
    expect(decodeRecord(whole.subarray(0, whole.length - 1))).toBeUndefined(); // no newline
    expect(decodeRecord(whole.subarray(0, 5))).toBeUndefined();
    for (const text of [
      'payload 00000000\n',
      'Payload 1ba0b0c7\n',
      `payload ${whole.toString().slice(8, 16).toUpperCase()}\n`, // the right checksum, upper case
      `payload  ${whole.toString().slice(8, 16)}\n`, // two spaces
      `payload${whole.toString().slice(8, 16)}\n`, // no space
      `payload ${whole.toString().slice(8, 15)}\n`, // seven digits
      '\n',
      ' 0000000\n',
      '',
    ]) {
      expect(decodeRecord(Buffer.from(text)), JSON.stringify(text)).toBeUndefined();
    }
    expect(decodeRecord(whole)).toBe('payload');
  });

  it('a payload whose bytes were changed does not decode', () => {
    const record = encodeRecord('00000000000000000042');
    for (let i = 0; i < 20; i++) {
      const damaged = Buffer.from(record);
      damaged[i] = damaged[i] === 0x30 ? 0x31 : 0x30;
      expect(decodeRecord(damaged), `byte ${i}`).toBeUndefined();
    }
  });
});

describe('readRecord, on a real file', () => {
  const decodeNumber = (data: Buffer): number | undefined => {
    const payload = decodeRecord(data);
    return payload === undefined ? undefined : Number(payload);
  };

  function withFile<T>(content: Buffer, use: (fd: number, file: string) => T): T {
    const file = path.join(tmp.dir, 'record');
    fs.writeFileSync(file, content);
    const fd = fs.openSync(file, 'r');
    try {
      return use(fd, file);
    } finally {
      fs.closeSync(fd);
    }
  }

  it('reads the record at the start of the file', () => {
    expect(withFile(encodeRecord('1234'), (fd) => readRecord(fd, 64, decodeNumber))).toBe(1234);
  });

  it('answers undefined for a damaged record, an empty file, or a record longer than it may read', () => {
    expect(withFile(Buffer.from('1234 00000000\n'), (fd) => readRecord(fd, 64, decodeNumber))).toBeUndefined();
    expect(withFile(Buffer.alloc(0), (fd) => readRecord(fd, 64, decodeNumber))).toBeUndefined();
    expect(withFile(encodeRecord('1'.repeat(100)), (fd) => readRecord(fd, 64, decodeNumber))).toBeUndefined();
  });

  it('reads again when what it read was torn, and returns the finished record', () => {
    let reads = 0;
    const value = withFile(Buffer.from('12'), (fd, file) => readRecord(fd, 64, (data) => {
      reads += 1;
      // The owner finishes its rewrite after the first read.
      if (reads === 1) fs.writeFileSync(file, encodeRecord('1234'));
      return decodeNumber(data);
    }));
    expect(value).toBe(1234);
    expect(reads).toBe(2);
  });
});
