/**
 * The wire layout (src/wire/layout.ts): every name a bus has on disk is
 * made and recognized in one place. Each parser must read back what its
 * maker wrote, and must refuse names that only look alike: another user
 * may plant names beside a bus, and a name misread as ours would be
 * emitted, swept or numbered from.
 */
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  anonymousId, busPaths, childPath, consumersDir, cursorFileName, cursorIdOf, END_MARKER_CRC, formatSeq, HOST, isAnonymous,
  isConsumerName, isTakenName, parseRecentName, parseRegistrationName, parseSegmentName, parseSeq, producersDir, recentName,
  registrationName, registrationTempName, registryEntryKind, segmentName, segmentsDir, SEQ_DIGITS, takenPath, tempOwner, tempPath,
} from '../../src/wire/layout.js';

const paths = busPaths('/srv/bus/stream');
/** A bus beside it whose name starts with this one's: its names must never count as this bus's. */
const longer = busPaths('/srv/bus/stream.b');

describe('the fixed names of a bus', () => {
  it('are the ones docs/protocol.md lists, beside FILE', () => {
    expect(paths).toEqual({
      file: '/srv/bus/stream',
      lock: '/srv/bus/stream.lock',
      lockDir: '/srv/bus/stream.lock.d',
      lockGuard: '/srv/bus/stream.lock.d.stale',
      strategyMarker: '/srv/bus/stream.lock-strategy',
      spare: '/srv/bus/.stream.spare',
      taker: '/srv/bus/.stream.taker',
      dir: '/srv/bus',
      base: 'stream',
    });
    expect(segmentsDir(paths)).toBe('/srv/bus/stream.segments');
    expect(consumersDir(paths)).toBe('/srv/bus/stream.consumers');
    expect(producersDir(paths)).toBe('/srv/bus/stream.producers');
  });

  it('are absolute for a relative FILE', () => {
    expect(busPaths('bus').file).toBe(path.resolve('bus'));
    expect(busPaths('bus').dir).toBe(process.cwd());
  });

  it('childPath joins a name to a resolved directory as path.join does', () => {
    for (const dir of ['/srv/bus', '/', '/srv/bus/']) expect(childPath(dir, 'x.cursor')).toBe(path.join(dir, 'x.cursor'));
  });
});

describe('this host in names', () => {
  it('has no dot or slash, so names split cleanly', () => {
    expect(HOST).toMatch(/^[A-Za-z0-9_-]+$/);
    if (/^[A-Za-z0-9-]+$/.test(os.hostname())) expect(HOST).toBe(os.hostname());
  });
});

describe('sequence numbers', () => {
  it('are 20 digits that read back', () => {
    for (const seq of [0, 1, 42, 10 ** 15, Number.MAX_SAFE_INTEGER]) {
      expect(formatSeq(seq)).toHaveLength(SEQ_DIGITS);
      expect(parseSeq(formatSeq(seq))).toBe(seq);
    }
  });

  it('refuse other widths, signs, and numbers past 2^53', () => {
    for (const digits of ['1', '0'.repeat(19), '0'.repeat(21), `-${'0'.repeat(19)}`, `${'0'.repeat(19)}a`, '9'.repeat(20), '', ' 0000000000000000001']) {
      expect(parseSeq(digits), digits).toBeUndefined();
    }
  });
});

describe('temporary and taken names', () => {
  it('tempPath makes a fresh hidden name beside FILE that tempOwner attributes to this host and process', () => {
    const a = tempPath(paths);
    const b = tempPath(paths);
    expect(a).not.toBe(b);
    expect(path.dirname(a)).toBe(paths.dir);
    const name = path.basename(a);
    expect(name).toMatch(/^\.stream\..+\.new$/);
    expect(tempOwner(paths, name)).toEqual({ host: HOST, pid: process.pid });
    expect(isTakenName(paths, name)).toBe(false);
  });

  it('takenPath makes a name isTakenName knows, which is no temporary', () => {
    const name = path.basename(takenPath(paths));
    expect(name).toMatch(/^\.stream\..+\.taken$/);
    expect(isTakenName(paths, name)).toBe(true);
    expect(tempOwner(paths, name)).toBeUndefined();
  });

  it('reads host and pid of another host\'s temporary', () => {
    expect(tempOwner(paths, '.stream.web-1.4242.7.0123abcd.new')).toEqual({ host: 'web-1', pid: 4242 });
  });

  it('a name of another bus, or one that only looks alike, is not ours', () => {
    const ofLonger = path.basename(tempPath(longer));
    expect(tempOwner(paths, ofLonger)).toBeUndefined();
    expect(isTakenName(paths, path.basename(takenPath(longer)))).toBe(false);
    for (const name of [
      'stream.web1.4242.7.0123abcd.new', // not hidden
      '.stream.web1.4242.7.0123abcd.new.x',
      '.stream.web1.4242.7.0123ABCD.new', // upper-case token
      '.stream.web1.4242.7.0123abc.new', // short token
      '.stream.web.1.4242.7.0123abcd.new', // a dot in the host
      '.stream.web1.-4242.7.0123abcd.new',
      '.stream.web1.4242.0123abcd.new', // no counter
      `.stream.web1.${'9'.repeat(30)}.7.0123abcd.new`, // a pid no process has
      '.stream.web1.4242.7.0123abcd.taken',
      '.stream.web1/x.4242.7.0123abcd.new',
      'FILE.__new__',
    ]) {
      expect(tempOwner(paths, name), name).toBeUndefined();
    }
    expect(isTakenName(paths, '.stream.web1.4242.7.0123abcd.taken')).toBe(true);
    expect(isTakenName(paths, '.stream.web1.4242.7.0123abcd.taken.new')).toBe(false);
  });
});

describe('ring entries', () => {
  it('recentName and parseRecentName round-trip, and sort in sequence order', () => {
    const names = [3, 1, 200, 2].map((seq) => recentName(paths, seq));
    expect(names[0]).toBe('.stream.00000000000000000003.recent');
    expect(names.map((name) => parseRecentName(paths, name)?.seq)).toEqual([3, 1, 200, 2]);
    expect([...names].sort().map((name) => parseRecentName(paths, name)?.seq)).toEqual([1, 2, 3, 200]);
  });

  it('refuse another bus\'s entries and malformed numbers', () => {
    expect(parseRecentName(paths, recentName(longer, 1))).toBeUndefined();
    for (const name of [
      '.stream.1.recent', '.stream.000000000000000000001.recent', '.stream.99999999999999999999.recent',
      'stream.00000000000000000001.recent', '.stream.00000000000000000001.recent.new', '.stream.0000000000000000000x.recent',
      '.stream..recent', '.stream.recent',
    ]) {
      expect(parseRecentName(paths, name), name).toBeUndefined();
    }
  });
});

describe('segments', () => {
  it('segmentName and parseSegmentName round-trip number and checksum', () => {
    expect(segmentName(7, 0xcbf43926)).toBe('00000000000000000007.cbf43926');
    expect(segmentName(7, 0x26)).toBe('00000000000000000007.00000026');
    for (const [seq, crc] of [[1, 0], [12345, 0xffffffff], [Number.MAX_SAFE_INTEGER, 0x1234]] as const) {
      expect(parseSegmentName(segmentName(seq, crc))).toEqual({ seq, crc, name: segmentName(seq, crc) });
    }
  });

  it('an end marker is named with the checksum of no bytes', () => {
    expect(END_MARKER_CRC).toBe(0);
    expect(segmentName(5, END_MARKER_CRC)).toBe('00000000000000000005.00000000');
  });

  it('refuse anything else', () => {
    for (const name of [
      '00000000000000000007.CBF43926', '00000000000000000007.cbf4392', '00000000000000000007.cbf439261', '7.cbf43926',
      '00000000000000000007', '00000000000000000007.cbf43926.new', '.00000000000000000007.cbf43926', '99999999999999999999.00000000',
      '00000000000000000007-cbf43926', '0000000000000000000７.cbf43926',
    ]) {
      expect(parseSegmentName(name), name).toBeUndefined();
    }
  });
});

describe('cursors and consumer names', () => {
  it('cursorFileName and cursorIdOf round-trip named and anonymous ids', () => {
    const anonymous = anonymousId();
    for (const id of ['alice', 'a.b-c_d', anonymous]) expect(cursorIdOf(cursorFileName(id))).toBe(id);
    expect(cursorFileName('alice')).toBe('alice.cursor');
  });

  it('anonymous ids are fresh, marked, and never a consumer name', () => {
    const id = anonymousId();
    expect(id).not.toBe(anonymousId());
    expect(id.startsWith(`~${HOST}.${process.pid}.`)).toBe(true);
    expect(isAnonymous(id)).toBe(true);
    expect(isConsumerName(id)).toBe(false);
    expect(isAnonymous('alice')).toBe(false);
  });

  it('hidden names and other files are no cursors', () => {
    for (const name of ['.alice.cursor', 'alice.cursor.new', 'alice', '.cursor', 'alice.Cursor']) expect(cursorIdOf(name), name).toBeUndefined();
  });

  it('consumer names: letters, digits, dot, underscore, dash; not leading dot or dash; 1 to 100', () => {
    for (const name of ['a', 'A1', '_x', 'worker-3.eu_west', '9', 'x'.repeat(100)]) expect(isConsumerName(name), name).toBe(true);
    for (const name of ['', '.hidden', '-flag', 'a/b', '..', 'a b', 'x'.repeat(101), '~anon', 'é', 'a\nb', 'a\0b']) {
      expect(isConsumerName(name), JSON.stringify(name)).toBe(false);
    }
  });
});

describe('producer registrations', () => {
  it('registrationName is fresh each time and parses back to this host and process', () => {
    const name = registrationName();
    expect(name).not.toBe(registrationName());
    expect(name).toMatch(/^[^.]+\.\d+\.[0-9a-f]{8}\.producer$/);
    expect(parseRegistrationName(name)).toEqual({ host: HOST, pid: process.pid });
    expect(registryEntryKind(name)).toBe('registration');
  });

  it('the temporary name of a registration is hidden, and known as one', () => {
    const temp = registrationTempName(registrationName());
    expect(temp.startsWith('.')).toBe(true);
    expect(registryEntryKind(temp)).toBe('temporary');
    expect(parseRegistrationName(temp)).toBeUndefined();
  });

  it('any visible *.producer counts as a registration (swept when dead), but only well-formed names tell who', () => {
    expect(registryEntryKind('hand-made.producer')).toBe('registration');
    expect(parseRegistrationName('hand-made.producer')).toBeUndefined();
    expect(parseRegistrationName('web1.4242.0123abcd.producer')).toEqual({ host: 'web1', pid: 4242 });
    for (const name of ['web.1.4242.0123abcd.producer', 'web1.x.0123abcd.producer', 'web1.4242.0123ABCD.producer', 'web1.4242.0123abcd.producer.new']) {
      expect(parseRegistrationName(name), name).toBeUndefined();
    }
  });

  it('other names are neither', () => {
    for (const name of ['.web1.4242.0123abcd.producer', 'web1.producer.new', 'web1.producers', 'README']) {
      expect(registryEntryKind(name), name).toBeUndefined();
    }
  });
});
