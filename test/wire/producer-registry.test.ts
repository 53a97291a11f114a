/**
 * Producer registrations (src/wire/producer-registry.ts): the progress
 * record `status` reads, and registration files in a real FILE.producers/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { flockLiveness } from '../../src/lock/liveness.js';
import { encodeRecord } from '../../src/wire/checked-record.js';
import { busPaths, HOST, producersDir } from '../../src/wire/layout.js';
import {
  decodeProducerRecord, encodeProducerRecord, inspectRegistrations, ProducerRegistration, type ProducerRecord,
} from '../../src/wire/producer-registry.js';
import { useBusDir } from '../helpers/bus-dir.js';

const tmp = useBusDir('filebus-wire-');

const RECORD: ProducerRecord = { mode: 'lossy', host: 'web1', pid: 4242, started: 1700000000000, chunks: 120, bytes: 7864320, last: 1700000012345 };

describe('the producer record', () => {
  it('is the line docs/protocol.md shows', () => {
    expect(encodeProducerRecord(RECORD).toString('utf8')).toBe(`${JSON.stringify(RECORD)} e6f23407\n`);
  });

  it('reads back, with last null before the first chunk, in every mode', () => {
    for (const mode of ['lossy', 'back-pressure', 'multicast'] as const) {
      const record = { ...RECORD, mode, last: null };
      expect(decodeProducerRecord(encodeProducerRecord(record))).toEqual(record);
    }
  });

  it('keeps reading records with fields it does not know (fields may be added)', () => {
    const newer = encodeRecord(JSON.stringify({ ...RECORD, relay: 'eu-west' }));
    expect(decodeProducerRecord(newer)).toMatchObject(RECORD);
  });

  it('refuses a torn line, and well-checksummed lines that are no record', () => {
    // The rewrite had reached the new chunk count, not yet the checksum.
    const before = encodeProducerRecord(RECORD);
    const after = encodeProducerRecord({ ...RECORD, chunks: 999 });
    const cut = after.indexOf('"bytes"');
    expect(decodeProducerRecord(Buffer.concat([after.subarray(0, cut), before.subarray(cut)]))).toBeUndefined();
    for (const payload of [
      'not json', '[]', 'null', '{}', JSON.stringify({ ...RECORD, mode: 'fast' }), JSON.stringify({ ...RECORD, pid: -1 }),
      JSON.stringify({ ...RECORD, chunks: 1.5 }), JSON.stringify({ ...RECORD, host: 7 }), JSON.stringify({ ...RECORD, last: 'never' }),
    ]) {
      expect(decodeProducerRecord(encodeRecord(payload)), payload).toBeUndefined();
    }
  });
});

describe('registrations in FILE.producers/', () => {
  function bus(): ReturnType<typeof busPaths> {
    return busPaths(tmp.bus);
  }

  it('a producer registers under its name, held and readable, and its progress reaches the record', () => {
    const paths = bus();
    const registration = ProducerRegistration.create(paths, undefined, 'back-pressure', { removeDirWhenLast: true, liveness: flockLiveness });
    try {
      const [state, ...others] = inspectRegistrations(producersDir(paths));
      expect(others).toEqual([]);
      expect(state?.live).toBe(true);
      expect(state?.fileName.startsWith(`${HOST}.${process.pid}.`)).toBe(true);
      expect(state?.record).toMatchObject({ mode: 'back-pressure', host: HOST, pid: process.pid, chunks: 0, bytes: 0, last: null });
      registration.update({ chunks: 3, bytes: 300, last: 1700000000123 });
      expect(inspectRegistrations(producersDir(paths))[0]?.record).toMatchObject({ chunks: 3, bytes: 300, last: 1700000000123 });
      // Nothing but the registration: its temporary name is gone.
      expect(fs.readdirSync(producersDir(paths))).toEqual([state?.fileName]);
    } finally {
      registration.close();
    }
    // The last to leave removes the directory, as the reference would leave a bus.
    expect(fs.existsSync(producersDir(paths))).toBe(false);
  });

  it('a dead producer\'s registration shows as not live, and the next producer sweeps it', () => {
    const paths = bus();
    fs.mkdirSync(producersDir(paths));
    const dead = path.join(producersDir(paths), 'web1.4242.0123abcd.producer');
    fs.writeFileSync(dead, encodeProducerRecord(RECORD));
    expect(inspectRegistrations(producersDir(paths))).toEqual([{ fileName: 'web1.4242.0123abcd.producer', live: false, record: RECORD }]);
    const registration = ProducerRegistration.create(paths, undefined, 'multicast', { removeDirWhenLast: false, liveness: flockLiveness });
    try {
      expect(fs.existsSync(dead)).toBe(false);
      expect(registration.othersRunning()).toBe(false);
      const second = ProducerRegistration.create(paths, undefined, 'multicast', { removeDirWhenLast: false, liveness: flockLiveness });
      expect(registration.othersRunning()).toBe(true);
      second.close();
      expect(registration.othersRunning()).toBe(false);
    } finally {
      registration.close();
    }
    expect(fs.existsSync(producersDir(paths))).toBe(true);
  });

  it('a registration without a readable record (torn for good, or empty as older filebus wrote) is listed without one', () => {
    const paths = bus();
    fs.mkdirSync(producersDir(paths));
    fs.writeFileSync(path.join(producersDir(paths), 'a.1.0123abcd.producer'), '');
    fs.writeFileSync(path.join(producersDir(paths), 'b.2.0123abcd.producer'), `${JSON.stringify(RECORD)} 00000000\n`);
    fs.writeFileSync(path.join(producersDir(paths), '.c.3.0123abcd.producer.new'), '');
    expect(inspectRegistrations(producersDir(paths))).toEqual([
      { fileName: 'a.1.0123abcd.producer', live: false, record: undefined },
      { fileName: 'b.2.0123abcd.producer', live: false, record: undefined },
    ]);
  });

  it('no directory: no registrations; a file in its place is ERR_FILEBUS_BAD_PATH', () => {
    const paths = bus();
    expect(inspectRegistrations(producersDir(paths))).toEqual([]);
    fs.writeFileSync(producersDir(paths), '');
    expect(() => inspectRegistrations(producersDir(paths))).toThrow(expect.objectContaining({ code: 'ERR_FILEBUS_BAD_PATH' }));
  });
});
