/**
 * A Producer or Consumer resolves its options once, in its constructor:
 * each option is read once, a later change to the caller's object changes
 * nothing, and a refusal names the option as the library calls it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Consumer, FilebusError, Producer, type ConsumerOptions } from '../../src/index.js';

const dirs: string[] = [];

afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function busFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'filebus-options-'));
  dirs.push(dir);
  return path.join(dir, 'bus');
}

/** `options` with every read of a property counted. */
function counted<T extends object>(options: T): { options: T; reads: Map<string, number> } {
  const reads = new Map<string, number>();
  const proxy = new Proxy(options, {
    get(target, key, receiver) {
      if (typeof key === 'string') reads.set(key, (reads.get(key) ?? 0) + 1);
      return Reflect.get(target, key, receiver) as unknown;
    },
  });
  return { options: proxy, reads };
}

function refusal(make: () => unknown): FilebusError {
  try {
    make();
  } catch (error) {
    expect(error).toBeInstanceOf(FilebusError);
    return error as FilebusError;
  }
  throw new Error('accepted');
}

describe('options are resolved once', () => {
  it('a producer reads each option once, at construction, however long it runs', async () => {
    const filename = busFile();
    const { options, reads } = counted({ filename, mode: 'multicast' as const, blockSize: 4, window: '8', retain: 'all' as const });
    const producer = new Producer(options);
    const afterConstruction = new Map(reads);
    options.blockSize = 1;
    producer.end(Buffer.from('0123456789'));
    await producer.close();
    expect(reads).toEqual(afterConstruction);
    expect([...reads.values()].every((count) => count === 1)).toBe(true);
    // Chunks of the block size given at construction, not of the one set later.
    expect(fs.readdirSync(`${filename}.segments`).length).toBe(4);
  });

  it('a consumer reads each option once, at construction, and opening the bus reads none again', async () => {
    const filename = busFile();
    const producer = new Producer({ filename, mode: 'multicast', retain: 'all' });
    producer.end(Buffer.from('hello'));
    await producer.close();
    const { options, reads } = counted<ConsumerOptions>({ filename, mode: 'multicast', from: 1, name: 'reader', sleepInterval: 0.01 });
    const consumer = new Consumer(options);
    const afterConstruction = new Map(reads);
    const chunks: Buffer[] = [];
    for await (const chunk of consumer) chunks.push(chunk);
    expect(Buffer.concat(chunks).toString()).toBe('hello');
    expect(reads).toEqual(afterConstruction);
    expect([...reads.values()].every((count) => count === 1)).toBe(true);
  });
});

describe('a refused option is named as the library calls it', () => {
  const cases: Array<[option: string, options: Record<string, unknown>]> = [
    ['blockSize', { blockSize: 0 }],
    ['sleepInterval', { sleepInterval: -1 }],
    ['window', { window: 'lots' }],
    ['watch', { watch: 'inotify' }],
    ['lock', { lock: 'fcntl' }],
    ['retain', { retain: 'forever' }],
    ['fileMode', { fileMode: 0o1777 }],
    ['mode', { mode: 'lossless' }],
    ['from', { from: 'soon' }],
  ];
  for (const [option, extra] of cases) {
    it(option, () => {
      const error = refusal(() => new Consumer({ filename: 'bus', ...extra } as never));
      expect(error.code).toBe('ERR_FILEBUS_INVALID_OPTION');
      expect(error.message).toMatch(new RegExp(`^${option} must `));
      expect(error.message).not.toMatch(/--/);
    });
  }
});
