/**
 * The library API, in process: Producer (a Writable) and Consumer (a Readable
 * and an async iterable) on a bus in a fresh temporary directory.
 *
 * Every wait in here is bounded (see `within`), so a hang shows up as a
 * failure naming what did not happen rather than as a test timeout.
 */
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { within } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';
import {
  BUS_MODES,
  Consumer,
  DEFAULT_BLOCK_SIZE,
  DEFAULT_SLEEP_INTERVAL,
  FilebusError,
  Producer,
  type BusMode,
  type ConsumerOptions,
} from '../../src/index.js';

/** The two modes of the reference protocol, which every test here is about. */
const MODES: readonly BusMode[] = ['lossy', 'back-pressure'];

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves like `promise`, or rejects naming `what` once `ms` have passed. */

/** How a promise settled, for asserting on rejections without unhandled ones. */
async function settle(promise: Promise<unknown>): Promise<{ ok: true; value: unknown } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}

const tmp = useBusDir('filebus-lib-');
const streams: Array<Producer | Consumer> = [];

/** A fresh directory for a bus (each call another), removed after the test. */
function busDir(): string {
  return tmp.another();
}

function busFile(): string {
  return path.join(busDir(), 'bus');
}

function producer(options: ConstructorParameters<typeof Producer>[0]): Producer {
  const p = new Producer(options);
  streams.push(p);
  return p;
}

function consumer(options: ConsumerOptions): Consumer {
  const c = new Consumer(options);
  streams.push(c);
  return c;
}

/** All chunks of a consumer that ends by itself (back-pressure EOF marker). */
async function collect(c: Consumer, ms = 15_000): Promise<Buffer[]> {
  const run = (async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of c) chunks.push(chunk);
    return chunks;
  })();
  return within(run, ms, 'the consumer to reach the end of the stream');
}

/** Names in the bus directory other than FILE and FILE.lock: temporary files left behind. */
function leftovers(file: string): string[] {
  const base = path.basename(file);
  return fs.readdirSync(path.dirname(file)).filter((name) => name !== base && name !== `${base}.lock`);
}

// Runs before the fixture's cleanup (after-hooks run last registered first).
afterEach(async () => {
  await Promise.all(
    streams.splice(0).map((s) => {
      if (s.closed) return undefined;
      const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
      s.on('error', () => {});
      s.destroy();
      return within(closed, 5_000, 'a stream to close in cleanup').catch(() => {});
    }),
  );
});

describe('exports', () => {
  it('exports the stream classes, the error class and the defaults', () => {
    const file = busFile();
    const p = producer({ filename: file });
    const c = consumer({ filename: file });
    expect(p).toBeInstanceOf(Writable);
    expect(c).toBeInstanceOf(Readable);
    expect(c.readableObjectMode).toBe(true);
    expect(p.filename).toBe(file);
    expect(c.filename).toBe(file);
    expect(typeof c[Symbol.asyncIterator]).toBe('function');
    expect(BUS_MODES).toEqual(expect.arrayContaining(['lossy', 'back-pressure']));
    expect(DEFAULT_BLOCK_SIZE).toBe(65536);
    expect(DEFAULT_SLEEP_INTERVAL).toBe(0.1);
    const error = new FilebusError('ERR_FILEBUS_IO', 'boom', { path: '/x' });
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ name: 'FilebusError', code: 'ERR_FILEBUS_IO', path: '/x', message: 'boom' });
  });
});

describe('back-pressure round trip', () => {
  it.each([
    { fileMonitoring: true, sleepInterval: 0.1 },
    { fileMonitoring: false, sleepInterval: 0.005 },
  ])('pipeline(Readable.from(buffers), producer) to for await, fileMonitoring $fileMonitoring', async ({ fileMonitoring, sleepInterval }) => {
    const filename = busFile();
    const blockSize = 4096;
    // Random bytes (NUL included, no newlines to cut at) in pieces of random sizes, some larger than a block.
    const pieces: Buffer[] = [];
    for (let total = 0; total < 150_000;) {
      const piece = randomBytes(1 + Math.floor(Math.random() * 10_000));
      pieces.push(piece);
      total += piece.length;
    }
    const sent = Buffer.concat(pieces);
    const options = { filename, mode: 'back-pressure' as const, blockSize, fileMonitoring, sleepInterval };
    const received = collect(consumer(options));
    await within(pipeline(Readable.from(pieces), producer(options)), 15_000, 'the producer pipeline');
    const chunks = await received;

    expect(chunks.every((chunk) => Buffer.isBuffer(chunk))).toBe(true);
    expect(Buffer.concat(chunks).equals(sent)).toBe(true);
    expect(Math.max(...chunks.map((chunk) => chunk.length))).toBeLessThanOrEqual(blockSize);
    expect(chunks.length).toBeGreaterThanOrEqual(Math.ceil(sent.length / blockSize));
    expect(chunks.some((chunk) => chunk.length === 0)).toBe(false);
    // The EOF marker was consumed, and nothing temporary stays behind.
    expect(fs.existsSync(filename)).toBe(false);
    expect(leftovers(filename)).toEqual([]);
  });

  it('cuts one write larger than blockSize into full blocks', async () => {
    const filename = busFile();
    const options = { filename, mode: 'back-pressure' as const, blockSize: 1000 };
    const sent = randomBytes(10_240);
    const received = collect(consumer(options));
    const p = producer(options);
    p.end(sent);
    const chunks = await received;
    expect(chunks.map((chunk) => chunk.length)).toEqual([...Array(10).fill(1000), 240]);
    expect(Buffer.concat(chunks).equals(sent)).toBe(true);
  });

  it('works as pipeline(consumer, writable): one Buffer per chunk, ends at the EOF marker', async () => {
    const filename = busFile();
    const options = { filename, mode: 'back-pressure' as const, blockSize: 512 };
    const sent = randomBytes(20_000);
    const chunks: unknown[] = [];
    const sink = new Writable({
      objectMode: true,
      write(chunk: unknown, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
    });
    const reading = pipeline(consumer(options), sink);
    await within(pipeline(Readable.from([sent]), producer(options)), 15_000, 'the producer pipeline');
    await within(reading, 15_000, 'pipeline(consumer, writable) to finish');
    expect(chunks.every((chunk) => Buffer.isBuffer(chunk))).toBe(true);
    const buffers = chunks as Buffer[];
    expect(Math.max(...buffers.map((chunk) => chunk.length))).toBeLessThanOrEqual(512);
    expect(Buffer.concat(buffers).equals(sent)).toBe(true);
  });

  it('a producer creates missing parent directories of FILE; a consumer creates none', async () => {
    const filename = path.join(busDir(), 'a', 'b', 'bus');
    const options = { filename, mode: 'back-pressure' as const };
    await expect(collect(consumer(options))).rejects.toMatchObject({ code: 'ERR_FILEBUS_DIRECTORY' });
    expect(fs.existsSync(path.join(busDir(), 'a'))).toBe(false);
    const p = producer(options);
    await new Promise<void>((resolve, reject) => p.once('bus', () => resolve()).once('error', reject));
    const received = collect(consumer(options));
    await p.close();
    expect(await received).toEqual([]);
    expect(fs.statSync(path.dirname(filename)).isDirectory()).toBe(true);
  });
});

describe('lossy mode', () => {
  it('a watching consumer sees every message of a slow producer, without consuming FILE', async () => {
    const filename = busFile();
    const options = { filename, mode: 'lossy' as const, sleepInterval: 0.02 };
    const c = consumer(options);
    const messages = Array.from({ length: 8 }, (_, i) => `message ${i}\n`);
    const seen: string[] = [];
    const reading = (async () => {
      for await (const chunk of c) {
        seen.push(chunk.toString());
        if (seen.length === messages.length) break;
      }
    })();
    const p = producer(options);
    p.write(messages[0]);
    // The consumer starts up meanwhile; the first message waits for it at FILE.
    await within((async () => { while (seen.length === 0) await sleep(5); })(), 10_000, 'the first message');
    for (const message of messages.slice(1)) {
      await sleep(80);
      p.write(message);
    }
    await within(reading, 10_000, 'every message');
    expect(seen).toEqual(messages);
    // Lossy consumers only look: the last chunk is still at FILE.
    expect(fs.readFileSync(filename, 'utf8')).toBe(messages.at(-1));

    // Closing a lossy producer publishes no end marker: FILE keeps the last chunk,
    // and a consumer that arrives late still sees it.
    await within(p.close(), 5_000, 'producer.close()');
    expect(fs.readFileSync(filename, 'utf8')).toBe(messages.at(-1));
    const late = consumer(options);
    for await (const chunk of late) {
      expect(chunk.toString()).toBe(messages.at(-1));
      break;
    }
    expect(late.closed).toBe(true);
  });

  it('a fast producer: the consumer sees an ordered subset ending with the newest chunk', async () => {
    const filename = busFile();
    const blockSize = 16;
    const options = { filename, mode: 'lossy' as const, blockSize };
    const count = 300;
    const messages = Array.from({ length: count }, (_, i) => Buffer.from(`#${String(i).padStart(blockSize - 2, '0')}\n`));
    expect(messages.every((m) => m.length === blockSize)).toBe(true);
    const c = consumer(options);
    const seen: number[] = [];
    const reading = (async () => {
      for await (const chunk of c) {
        expect(chunk.length).toBe(blockSize);
        const index = Number(chunk.toString().slice(1));
        seen.push(index);
        if (index === count - 1) break;
      }
    })();
    // Let the consumer see a first chunk before the burst, so it is certainly watching.
    const p = producer(options);
    p.write(messages[0]);
    await within((async () => { while (seen.length === 0) await sleep(5); })(), 10_000, 'the first chunk');
    await within(pipeline(Readable.from(messages.slice(1)), p), 15_000, 'the producer pipeline');
    await within(reading, 10_000, 'the newest chunk');
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThan(seen[i - 1]!);
    expect(seen.at(-1)).toBe(count - 1);
  });
});

describe('AbortSignal', () => {
  it.each(MODES)('aborting a waiting consumer (%s) makes for await reject with ERR_FILEBUS_ABORTED', async (mode) => {
    const controller = new AbortController();
    const c = consumer({ filename: busFile(), mode, signal: controller.signal });
    const errors: unknown[] = [];
    c.on('error', (error) => errors.push(error));
    const reading = settle((async () => { for await (const _ of c) { /* nothing is published */ } })());
    await sleep(200);
    const started = Date.now();
    controller.abort();
    const outcome = await within(reading, 2_000, 'for await to settle after abort');
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(outcome.ok).toBe(false);
    const error = (outcome as { error: unknown }).error;
    expect(error).toBeInstanceOf(FilebusError);
    expect(error).toMatchObject({ code: 'ERR_FILEBUS_ABORTED' });
    expect(c.destroyed).toBe(true);
    // The stream's 'error' event carries the same typed error.
    expect(errors.length).toBeGreaterThan(0);
    for (const e of errors) expect(e).toMatchObject({ name: 'FilebusError', code: 'ERR_FILEBUS_ABORTED' });
  });

  it('aborting a waiting consumer used through pipeline() rejects with ERR_FILEBUS_ABORTED', async () => {
    const controller = new AbortController();
    const c = consumer({ filename: busFile(), mode: 'back-pressure', signal: controller.signal });
    const sink = new Writable({ objectMode: true, write: (_chunk, _encoding, callback) => callback() });
    const reading = settle(pipeline(c, sink));
    await sleep(200);
    controller.abort();
    const outcome = await within(reading, 2_000, 'pipeline to settle after abort');
    expect(outcome.ok).toBe(false);
    expect((outcome as { error: unknown }).error).toMatchObject({ name: 'FilebusError', code: 'ERR_FILEBUS_ABORTED' });
  });

  it('aborting a producer blocked in back-pressure mode rejects promptly and cleans up', async () => {
    const filename = busFile();
    const controller = new AbortController();
    const block = 1024;
    const sent = randomBytes(5 * block);
    const p = producer({ filename, mode: 'back-pressure', blockSize: block, signal: controller.signal });
    const writing = settle(pipeline(Readable.from([sent]), p));
    // No consumer: the first block sits at FILE and the second waits for it to go.
    await within((async () => { while (!fs.existsSync(filename)) await sleep(5); })(), 10_000, 'the first block');
    await sleep(200);
    const started = Date.now();
    controller.abort();
    const outcome = await within(writing, 2_000, 'the producer pipeline to settle after abort');
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(outcome.ok).toBe(false);
    expect((outcome as { error: unknown }).error).toMatchObject({ name: 'FilebusError', code: 'ERR_FILEBUS_ABORTED' });
    await within((async () => { while (!p.closed) await sleep(5); })(), 2_000, 'the producer to close');
    // The temporary file of the block that was waiting is gone; the published block stays.
    expect(leftovers(filename)).toEqual([]);
    expect(fs.readFileSync(filename).equals(sent.subarray(0, block))).toBe(true);
    // The lock was released: a consumer can take that block.
    const c = consumer({ filename, mode: 'back-pressure' });
    for await (const chunk of c) {
      expect(chunk.equals(sent.subarray(0, block))).toBe(true);
      break;
    }
  });

  // A signal that is already aborted: Node destroys the stream from inside
  // its constructor, before the subclass's private fields exist.
  it('a consumer given an already aborted signal reports an abort, not a TypeError', async () => {
    const c = consumer({ filename: busFile(), mode: 'back-pressure', signal: AbortSignal.abort() });
    const errors: unknown[] = [];
    c.on('error', (error) => errors.push(error));
    const got: Buffer[] = [];
    const outcome = await within(settle((async () => { for await (const chunk of c) got.push(chunk); })()), 2_000, 'for await on an aborted consumer');
    await sleep(50);
    expect(c.destroyed).toBe(true);
    expect(got).toEqual([]);
    // The loop reports the abort, like a consumer aborted while waiting.
    expect(outcome.ok).toBe(false);
    expect((outcome as { error: unknown }).error).toMatchObject({ name: 'FilebusError', code: 'ERR_FILEBUS_ABORTED' });
    for (const error of errors) expect(error).toMatchObject({ name: 'FilebusError', code: 'ERR_FILEBUS_ABORTED' });
  });

  it('a producer given an already aborted signal reports an abort, not a TypeError', async () => {
    const filename = busFile();
    const p = producer({ filename, mode: 'back-pressure', signal: AbortSignal.abort() });
    const errors: unknown[] = [];
    p.on('error', (error) => errors.push(error));
    const outcome = await within(settle(pipeline(Readable.from([Buffer.from('x')]), p)), 2_000, 'pipeline into an aborted producer');
    await sleep(50);
    expect(outcome.ok).toBe(false);
    expect((outcome as { error: unknown }).error).toMatchObject({ name: 'FilebusError', code: 'ERR_FILEBUS_ABORTED' });
    for (const error of errors) expect(error).toMatchObject({ name: 'FilebusError', code: 'ERR_FILEBUS_ABORTED' });
    expect(fs.existsSync(filename)).toBe(false);
  });
});

describe('close()', () => {
  it.each(MODES)('consumer close() while waiting (%s) resolves promptly and ends for await quietly', async (mode) => {
    const filename = busFile();
    const c = consumer({ filename, mode });
    const reading = settle((async () => { for await (const _ of c) { /* nothing is published */ } })());
    await sleep(200);
    const started = Date.now();
    await within(c.close(), 1_000, 'consumer.close()');
    expect(Date.now() - started).toBeLessThan(500);
    const outcome = await within(reading, 1_000, 'for await to settle after close()');
    // close() is a request to stop, not a failure: the loop just ends.
    expect(outcome).toEqual({ ok: true, value: undefined });
    expect(c.closed).toBe(true);
    // Closing again, and closing a consumer never read from, are no-ops.
    await within(c.close(), 1_000, 'a second close()');
    await within(consumer({ filename, mode }).close(), 1_000, 'close() of an unused consumer');
  });

  it('consumer close() while waiting in pipeline(consumer, writable) ends it with a premature close', async () => {
    const c = consumer({ filename: busFile(), mode: 'back-pressure' });
    const sink = new Writable({ objectMode: true, write: (_chunk, _encoding, callback) => callback() });
    const reading = settle(pipeline(c, sink));
    await sleep(200);
    await within(c.close(), 1_000, 'consumer.close()');
    const outcome = await within(reading, 1_000, 'pipeline to settle after close()');
    expect(outcome.ok).toBe(false);
    expect((outcome as { error: unknown }).error).toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
  });

  it('producer close() publishes what was written and the EOF marker, so a back-pressure consumer ends', async () => {
    const filename = busFile();
    const options = { filename, mode: 'back-pressure' as const };
    const p = producer(options);
    p.write('hello, ');
    p.write(Buffer.from([0, 1, 2]));
    p.write('world');
    const closing = p.close();
    const chunks = await collect(consumer(options));
    await within(closing, 5_000, 'producer.close()');
    expect(Buffer.concat(chunks).equals(Buffer.concat([Buffer.from('hello, '), Buffer.from([0, 1, 2]), Buffer.from('world')]))).toBe(true);
    expect(p.writableFinished).toBe(true);
    expect(fs.existsSync(filename)).toBe(false);
    expect(leftovers(filename)).toEqual([]);
    // Closing again is a no-op.
    await within(p.close(), 1_000, 'a second producer.close()');
  });

  it('producer close() with nothing written still ends a back-pressure consumer', async () => {
    const filename = busFile();
    const options = { filename, mode: 'back-pressure' as const };
    const received = collect(consumer(options));
    await within(producer(options).close(), 10_000, 'producer.close()');
    expect(await received).toEqual([]);
  });

  it('a consumer closed before it is iterated takes nothing from the bus', async () => {
    const filename = busFile();
    const options = { filename, mode: 'back-pressure' as const };
    const c = consumer(options);
    await within(c.close(), 1_000, 'consumer.close()');
    const p = producer(options);
    p.write('not for a closed consumer');
    await within((async () => { while (!fs.existsSync(filename)) await sleep(5); })(), 5_000, 'the chunk to be published');
    const got: string[] = [];
    const outcome = await settle(within((async () => {
      for await (const chunk of c) got.push(chunk.toString());
    })(), 1_000, 'for await over a closed consumer to settle'));
    expect(got).toEqual([]);
    expect(fs.readFileSync(filename, 'utf8')).toBe('not for a closed consumer');
    // It ends at once, or reports that it was closed; it does not wait for chunks.
    if (!outcome.ok) expect((outcome.error as Error).message).not.toMatch(/timed out/);
  });

  it('consumer close() from inside for await ends the loop and leaves that chunk on the bus', async () => {
    const filename = busFile();
    const options = { filename, mode: 'back-pressure' as const, blockSize: 5 };
    const p = producer(options);
    p.write('xxxxxyyyyy');
    const closing = p.close();
    const first = consumer(options);
    const seen: string[] = [];
    const outcome = await within(settle((async () => {
      for await (const chunk of first) {
        seen.push(chunk.toString());
        await first.close();
      }
    })()), 5_000, 'the loop to end after close()');
    expect(outcome).toEqual({ ok: true, value: undefined });
    expect(seen).toEqual(['xxxxx']);
    const rest = await collect(consumer(options));
    expect(rest.map(String)).toEqual(['xxxxx', 'yyyyy']);
    await within(closing, 5_000, 'producer.close()');
  });
});

describe('delivery in back-pressure mode', () => {
  it('breaking out of for await leaves the current chunk for the next consumer', async () => {
    const filename = busFile();
    const options = { filename, mode: 'back-pressure' as const, blockSize: 5 };
    const p = producer(options);
    p.write('aaaaabbbbbccccc');
    const closing = p.close();

    const first = consumer(options);
    const firstSeen: string[] = [];
    for await (const chunk of first) {
      firstSeen.push(chunk.toString());
      break;
    }
    expect(firstSeen).toEqual(['aaaaa']);
    expect(first.closed).toBe(true);
    // The chunk it broke out on is still at FILE.
    expect(fs.readFileSync(filename, 'utf8')).toBe('aaaaa');

    const second = await collect(consumer(options));
    expect(second.map(String)).toEqual(['aaaaa', 'bbbbb', 'ccccc']);
    await within(closing, 5_000, 'producer.close()');
  });
});

describe('write() back-pressure', () => {
  it('write() returns false and drain waits until a consumer takes a chunk', async () => {
    const filename = busFile();
    const block = 1024;
    const options = { filename, mode: 'back-pressure' as const, blockSize: block };
    const p = producer(options);
    const first = randomBytes(block);
    // A whole block reaches the high-water mark at once.
    expect(p.write(first)).toBe(false);
    // With no consumer, the first block still goes out: FILE is free.
    await within(once(p, 'drain'), 5_000, "'drain' after the first block is published");
    expect(fs.readFileSync(filename).equals(first)).toBe(true);
    // Let the producer settle (see 'a write right after drain is published' below).
    await sleep(20);

    // Now FILE is taken: a second block waits for it, and behind it the stream's own buffer fills.
    const pieces: Buffer[] = [];
    let accepted = true;
    while (accepted) {
      const piece = randomBytes(256);
      pieces.push(piece);
      accepted = p.write(piece);
      expect(pieces.length).toBeLessThanOrEqual(3 * block / 256); // bounded: FILE + one block + the high-water mark
    }
    let drained = false;
    p.on('drain', () => { drained = true; });
    await sleep(300);
    expect(drained).toBe(false);
    expect(fs.readFileSync(filename).equals(first)).toBe(true);

    const c = consumer(options);
    const chunks = c[Symbol.asyncIterator]();
    const chunk1 = await within(chunks.next(), 5_000, 'the first chunk');
    expect(chunk1.done).toBe(false);
    expect((chunk1.value as Buffer).equals(first)).toBe(true);
    // Handed over but not yet delivered (for await delivers a chunk when it
    // asks for the next one): it is off FILE, so the producer goes on, but
    // it stays on disk under the name the consumer took it by.
    await sleep(200);
    const takenNames = (): string[] => fs.readdirSync(path.dirname(filename)).filter((name) => name.endsWith('.taken'));
    expect(takenNames()).toHaveLength(1);
    expect(fs.readFileSync(path.join(path.dirname(filename), takenNames()[0]!)).equals(first)).toBe(true);

    const chunk2 = await within(chunks.next(), 5_000, 'the second chunk');
    expect(chunk2.done).toBe(false);
    await within((async () => { while (!drained) await sleep(5); })(), 5_000, "'drain' after the consumer took a chunk");

    p.end();
    const rest: Buffer[] = [chunk2.value as Buffer];
    for (;;) {
      const next = await within(chunks.next(), 5_000, 'the remaining chunks');
      if (next.done) break;
      rest.push(next.value);
    }
    expect(Buffer.concat([first, ...rest]).equals(Buffer.concat([first, ...pieces]))).toBe(true);
    expect(rest.every((chunk) => chunk.length <= block)).toBe(true);
  });

  // Writing again as soon as 'drain' is seen is the ordinary Writable pattern
  // (`if (!w.write(x)) await once(w, 'drain')`). The await is deliberately
  // bare: the write must land right after 'drain', as it does in real code.
  it.each(MODES)('a write right after `await once(producer, "drain")` is published (%s)', async (mode: BusMode) => {
    const filename = busFile();
    const p = producer({ filename, mode, blockSize: 4 });
    expect(p.write('aaaa')).toBe(false);
    await once(p, 'drain'); // FILE is free, so this comes without any consumer
    expect(fs.readFileSync(filename, 'utf8')).toBe('aaaa');
    if (mode === 'back-pressure') fs.unlinkSync(filename); // as a consumer taking it would
    expect(p.write('bbbb')).toBe(false);
    const drained = once(p, 'drain');
    await within((async () => {
      while (!fs.existsSync(filename) || fs.readFileSync(filename, 'utf8') !== 'bbbb') await sleep(5);
    })(), 3_000, 'the write after drain to be published');
    await within(drained, 3_000, "'drain' after the second block");
    if (mode === 'back-pressure') fs.unlinkSync(filename); // taken too: close() can publish the EOF marker
    await within(p.close(), 3_000, 'producer.close()');
    expect(fs.readFileSync(filename, 'utf8')).toBe(mode === 'back-pressure' ? '' : 'bbbb');
  }, 15_000);
});

describe('options', () => {
  const invalid: Array<[string, unknown]> = [
    ['no options', undefined],
    ['null options', null],
    ['missing filename', {}],
    ['empty filename', { filename: '' }],
    ['non-string filename', { filename: 42 }],
    ['NUL in filename', { filename: 'bus\0x' }],
    ['unknown mode', { filename: 'bus', mode: 'lossless' }],
    ['zero blockSize', { filename: 'bus', blockSize: 0 }],
    ['negative blockSize', { filename: 'bus', blockSize: -1 }],
    ['fractional blockSize', { filename: 'bus', blockSize: 1.5 }],
    ['string blockSize', { filename: 'bus', blockSize: '4096' }],
    ['NaN blockSize', { filename: 'bus', blockSize: Number.NaN }],
    ['huge blockSize', { filename: 'bus', blockSize: 2 ** 31 }],
    ['negative sleepInterval', { filename: 'bus', sleepInterval: -0.1 }],
    ['NaN sleepInterval', { filename: 'bus', sleepInterval: Number.NaN }],
    ['infinite sleepInterval', { filename: 'bus', sleepInterval: Number.POSITIVE_INFINITY }],
    ['string sleepInterval', { filename: 'bus', sleepInterval: '0.1' }],
  ];

  for (const [Class, name] of [[Producer, 'Producer'], [Consumer, 'Consumer']] as const) {
    it.each(invalid)(`new ${name}(...) throws ERR_FILEBUS_INVALID_OPTION synchronously: %s`, (_label, options) => {
      let thrown: unknown;
      try {
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        const made = new Class(options as any);
        streams.push(made);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(FilebusError);
      expect(thrown).toMatchObject({ code: 'ERR_FILEBUS_INVALID_OPTION' });
    });

    it(`new ${name}(...) rejects a signal that is not an AbortSignal with ERR_FILEBUS_INVALID_OPTION`, () => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      expect(() => streams.push(new Class({ filename: busFile(), signal: {} as any }))).toThrow(
        expect.objectContaining({ name: 'FilebusError', code: 'ERR_FILEBUS_INVALID_OPTION' }),
      );
    });

    it(`new ${name}(...) rejects a fileMonitoring that is not a boolean with ERR_FILEBUS_INVALID_OPTION`, () => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      expect(() => streams.push(new Class({ filename: busFile(), fileMonitoring: 'false' as any }))).toThrow(
        expect.objectContaining({ name: 'FilebusError', code: 'ERR_FILEBUS_INVALID_OPTION' }),
      );
    });

    it(`new ${name}(...) accepts the edge values blockSize 1 and sleepInterval 0`, () => {
      const made = new Class({ filename: busFile(), blockSize: 1, sleepInterval: 0, mode: 'back-pressure', fileMonitoring: false });
      streams.push(made);
      expect(made.destroyed).toBe(false);
    });
  }
});

describe('bad paths', () => {
  it('a FILE that is a directory: the producer fails with ERR_FILEBUS_BAD_PATH and touches nothing', async () => {
    const filename = busFile();
    fs.mkdirSync(filename);
    const outcome = await within(settle(pipeline(Readable.from([Buffer.from('x')]), producer({ filename }))), 5_000, 'the producer pipeline');
    expect(outcome.ok).toBe(false);
    const error = (outcome as { error: unknown }).error;
    expect(error).toBeInstanceOf(FilebusError);
    expect(error).toMatchObject({ code: 'ERR_FILEBUS_BAD_PATH', path: filename });
    expect(fs.readdirSync(path.dirname(filename))).toEqual(['bus']);
    expect(fs.readdirSync(filename)).toEqual([]);
  });

  it('a FILE that is a directory: producer close() rejects with ERR_FILEBUS_BAD_PATH', async () => {
    const filename = busFile();
    fs.mkdirSync(filename);
    const p = producer({ filename });
    const outcome = await within(settle(p.close()), 5_000, 'producer.close()');
    expect(outcome.ok).toBe(false);
    expect((outcome as { error: unknown }).error).toMatchObject({ name: 'FilebusError', code: 'ERR_FILEBUS_BAD_PATH' });
  });

  it.each(MODES)('a FILE that is a directory: the consumer (%s) fails with ERR_FILEBUS_BAD_PATH', async (mode) => {
    const filename = busFile();
    fs.mkdirSync(filename);
    const iterated = await within(settle(collect(consumer({ filename, mode }))), 5_000, 'for await');
    expect(iterated.ok).toBe(false);
    expect((iterated as { error: unknown }).error).toBeInstanceOf(FilebusError);
    expect((iterated as { error: unknown }).error).toMatchObject({ code: 'ERR_FILEBUS_BAD_PATH', path: filename });

    const sink = new Writable({ objectMode: true, write: (_chunk, _encoding, callback) => callback() });
    const piped = await within(settle(pipeline(consumer({ filename, mode }), sink)), 5_000, 'pipeline(consumer, writable)');
    expect(piped.ok).toBe(false);
    expect((piped as { error: unknown }).error).toMatchObject({ name: 'FilebusError', code: 'ERR_FILEBUS_BAD_PATH' });
    expect(fs.readdirSync(path.dirname(filename))).toEqual(['bus']);
  });

  it('a parent of FILE that is a regular file fails with ERR_FILEBUS_DIRECTORY', async () => {
    const parent = path.join(busDir(), 'plain');
    fs.writeFileSync(parent, 'not a directory');
    const filename = path.join(parent, 'bus');
    const produced = await within(settle(pipeline(Readable.from([Buffer.from('x')]), producer({ filename }))), 5_000, 'the producer pipeline');
    expect(produced.ok).toBe(false);
    expect((produced as { error: unknown }).error).toMatchObject({ name: 'FilebusError', code: 'ERR_FILEBUS_DIRECTORY' });
    const consumed = await within(settle(collect(consumer({ filename, mode: 'back-pressure' }))), 5_000, 'for await');
    expect(consumed.ok).toBe(false);
    expect((consumed as { error: unknown }).error).toMatchObject({ name: 'FilebusError', code: 'ERR_FILEBUS_DIRECTORY' });
  });
});

describe('reuseBuffers', () => {
  it.each(['back-pressure', 'multicast'] as const)('%s: for await gets views of one buffer, each right until the next is asked for', async (mode) => {
    const filename = busFile();
    const options = { filename, mode, blockSize: 1000 };
    const sent = randomBytes(25_000);
    const c = consumer({ ...options, reuseBuffers: true });
    const run = (async () => {
      const copies: Buffer[] = [];
      const backing = new Set<ArrayBufferLike>();
      for await (const chunk of c) {
        copies.push(Buffer.from(chunk));
        backing.add(chunk.buffer);
      }
      return { copies, backing };
    })();
    if (mode === 'multicast') await within((async () => { while (!fs.existsSync(`${filename}.consumers`) || fs.readdirSync(`${filename}.consumers`).length === 0) await sleep(10); })(), 10_000, 'the consumer to join');
    await within(pipeline(Readable.from([sent]), producer(options)), 15_000, 'the producer pipeline');
    const { copies, backing } = await within(run, 15_000, 'the consumer to finish');
    expect(Buffer.concat(copies).equals(sent)).toBe(true);
    expect(copies.length).toBe(25);
    // One backing buffer for all 25 chunks: no allocation per chunk.
    expect(backing.size).toBe(1);
  });

  it('is ignored when the consumer is read as a stream: every chunk has its own buffer', async () => {
    const filename = busFile();
    const options = { filename, mode: 'back-pressure' as const, blockSize: 1000 };
    const sent = randomBytes(10_000);
    const chunks: Buffer[] = [];
    const sink = new Writable({ objectMode: true, write(chunk: Buffer, _e, cb) { chunks.push(chunk); cb(); } });
    const reading = pipeline(consumer({ ...options, reuseBuffers: true }), sink);
    await within(pipeline(Readable.from([sent]), producer(options)), 15_000, 'the producer pipeline');
    await within(reading, 15_000, 'the consumer pipeline');
    // Kept chunks still hold their own bytes: with one reused buffer they would all show the last chunk.
    expect(chunks.length).toBe(10);
    expect(Buffer.concat(chunks).equals(sent)).toBe(true);
  });
});
