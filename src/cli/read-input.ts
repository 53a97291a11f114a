import fs from 'node:fs';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { errnoCode } from '../errors.js';
import type { Producer } from '../streams/producer.js';

/** Buffers in flight: one being read, one being published, one waiting. */
const POOL_SIZE = 3;
/**
 * Small blocks are read several at a time (the producer cuts them apart
 * without copying): a read of stdin is a round trip to the thread pool,
 * which at 4 KiB blocks cost as much as publishing the chunk.
 */
const MIN_READ = 256 * 1024;

/** Reads one block of input into `buffer`; `eof` once the input has ended. */
type BlockReader = (buffer: Buffer) => Promise<{ length: number; eof: boolean }>;

/**
 * Feeds standard input to the producer through a few block buffers reused
 * for the whole stream. Reading through process.stdin would allocate a new
 * buffer for every read, and V8 frees buffer memory only after ~64 MB of
 * dead buffers has piled up: most of a producer's peak RSS.
 *
 * A buffer is refilled only once the producer has published every byte
 * written from it (its `stats.bytes` has passed the buffer's end), so a
 * chunk is never overwritten while queued.
 *
 * Regular files and pipes are read this way; sockets and terminals (which
 * cannot be reopened non-blocking) go through process.stdin as before.
 */
export async function feedStandardInput(producer: Producer, blockSize: number): Promise<void> {
  const readSize = blockSize * Math.max(1, Math.floor(MIN_READ / blockSize));
  const read = await blockReader(readSize);
  if (!read) return pipeline(process.stdin, producer);
  const pool = Array.from({ length: POOL_SIZE }, () => Buffer.allocUnsafeSlow(readSize));
  const publishedBy = new Array<number>(POOL_SIZE).fill(0);
  let written = 0;
  for (let slot = 0; ; slot = (slot + 1) % POOL_SIZE) {
    while (producer.stats.bytes < publishedBy[slot]!) await whileOpen(producer, once(producer, 'chunk'));
    const { length, eof } = await whileOpen(producer, read(pool[slot]!));
    if (length > 0) {
      written += length;
      publishedBy[slot] = written;
      // No wait for 'drain': the pool already bounds what is in flight, and
      // reading the next block while this one waits for a consumer is the
      // point of having three.
      producer.write(pool[slot]!.subarray(0, length));
    }
    if (eof) break;
  }
  producer.end();
  await whileOpen(producer, once(producer, 'finish'));
}

/**
 * `work`, unless the producer fails or is destroyed first (a read of stdin
 * cannot be cancelled, so it is left behind). Listeners are removed either
 * way: racing every step against one long-lived promise would pile up a
 * reaction per chunk on it.
 */
function whileOpen<T>(producer: Producer, work: Promise<T>): Promise<T> {
  if (producer.destroyed) return Promise.reject(producer.errored ?? new Error('producer closed'));
  return new Promise<T>((resolve, reject) => {
    const onError = (error: Error): void => settle(() => reject(error));
    const onClose = (): void => settle(() => reject(producer.errored ?? new Error('producer closed')));
    const settle = (then: () => void): void => {
      producer.off('error', onError);
      producer.off('close', onClose);
      then();
    };
    producer.once('error', onError);
    producer.once('close', onClose);
    work.then((value) => settle(() => resolve(value)), (error: unknown) => settle(() => reject(error)));
  });
}

async function blockReader(readSize: number): Promise<BlockReader | undefined> {
  let st: fs.Stats;
  try {
    st = fs.fstatSync(0);
  } catch {
    return undefined; // no stdin: let process.stdin report it
  }
  if (st.isFile()) return (buffer) => fillFromFile(buffer, readSize);
  if (!st.isFIFO()) return undefined;
  // A second, non-blocking description of the same pipe tells "nothing more
  // waiting right now" (EAGAIN) without changing stdin's own flags, which the
  // writer's side of a shell pipeline may share.
  let drain: number;
  try {
    drain = fs.openSync('/proc/self/fd/0', fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  return (buffer) => fillFromPipe(buffer, drain);
}

async function fillFromFile(buffer: Buffer, size: number): Promise<{ length: number; eof: boolean }> {
  let length = 0;
  while (length < size) {
    const n = await readAsync(0, buffer, length, size - length);
    if (n === 0) return { length, eof: true };
    length += n;
  }
  return { length, eof: false };
}

/**
 * Waits for input (a blocking read in the thread pool, so signals are still
 * handled), then takes whatever else is already waiting without blocking.
 * The block ends when it is full or the pipe runs dry: input pausing is
 * what cuts a short chunk, as with process.stdin.
 */
async function fillFromPipe(buffer: Buffer, drain: number): Promise<{ length: number; eof: boolean }> {
  let length: number;
  try {
    length = await readAsync(0, buffer, 0, buffer.length);
  } catch (error) {
    // stdin was made non-blocking by whoever handed it to us: wait by polling.
    if (errnoCode(error) !== 'EAGAIN') throw error;
    await new Promise((resolve) => setTimeout(resolve, 1));
    return { length: 0, eof: false };
  }
  if (length === 0) return { length, eof: true };
  let dry = 0;
  while (length < buffer.length) {
    let n: number;
    try {
      n = fs.readSync(drain, buffer, length, buffer.length - length, null);
    } catch (error) {
      if (errnoCode(error) !== 'EAGAIN') throw error;
      if (++dry > 2) break;
      await new Promise((resolve) => setImmediate(resolve));
      continue;
    }
    if (n === 0) return { length, eof: true };
    length += n;
  }
  return { length, eof: false };
}

function readAsync(fd: number, buffer: Buffer, offset: number, length: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.read(fd, buffer, offset, length, null, (error, n) => (error ? reject(error) : resolve(n)));
  });
}
