import fs from 'node:fs';
import { once } from 'node:events';
import net from 'node:net';
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
  // A second, non-blocking description of the same pipe, so that stdin's own
  // flags, which the writer's side of a shell pipeline may share, stay as
  // they are.
  let fd: number;
  try {
    fd = fs.openSync('/proc/self/fd/0', fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  const reader = new PipeReader(fd);
  return (buffer) => reader.read(buffer);
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

/** What libuv reads a pipe into when it has waited for input: at most the pipe's capacity, 64 KiB unless enlarged. */
const STAGING_SIZE = 64 * 1024;

interface Waiting {
  readonly buffer: Buffer;
  readonly resolve: (result: { length: number; eof: boolean }) => void;
  readonly reject: (error: Error) => void;
}

/**
 * A pipe, read on a non-blocking description. A block starts with whatever
 * is waiting in the pipe; when nothing is, libuv waits for input with epoll
 * on a paused-between-waits socket. Nothing waits in the thread pool: a read
 * blocked there holds up the exit of a producer that fails while its input
 * is idle (libuv joins the pool's threads at exit), which then printed its
 * error and hung until more input came.
 *
 * The block then takes what else is already waiting, read directly into it
 * without blocking, and ends when it is full or the pipe runs dry: input
 * pausing is what cuts a short chunk, as with process.stdin.
 */
class PipeReader {
  readonly #staging = Buffer.allocUnsafeSlow(STAGING_SIZE);
  /** #staging[#carryStart, #carryEnd): read by libuv, not yet in a block. */
  #carryStart = 0;
  #carryEnd = 0;
  #socket: net.Socket | undefined;
  #waiting: Waiting | undefined;
  #eof = false;
  #error: Error | undefined;

  constructor(readonly fd: number) {}

  async read(buffer: Buffer): Promise<{ length: number; eof: boolean }> {
    if (this.#error) throw this.#error;
    let length = this.#takeCarry(buffer, 0);
    if (length === buffer.length) return { length, eof: false };
    if (this.#eof) return { length, eof: true };
    let dry = 0;
    while (length < buffer.length) {
      let n: number;
      try {
        n = fs.readSync(this.fd, buffer, length, buffer.length - length, null);
      } catch (error) {
        if (errnoCode(error) !== 'EAGAIN') throw error;
        if (length === 0) {
          // Nothing at all yet: wait for input.
          const first = await this.#wait(buffer);
          if (first.eof) return first;
          length = first.length;
          continue;
        }
        if (++dry > 2) break;
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      if (n === 0) {
        this.#end();
        return { length, eof: true };
      }
      length += n;
    }
    return { length, eof: false };
  }

  /** Resolves with the first input to arrive, in `buffer` (what does not fit is carried), or at end of input. */
  #wait(buffer: Buffer): Promise<{ length: number; eof: boolean }> {
    return new Promise((resolve, reject) => {
      this.#waiting = { buffer, resolve, reject };
      if (this.#socket) {
        this.#socket.resume();
        return;
      }
      // `onread` (Node 15.8+; missing from @types/node's constructor options):
      // libuv reads into our buffer, no allocation per read.
      const options: net.SocketConstructorOpts & { onread: { buffer: Buffer; callback: (n: number) => boolean } } = {
        fd: this.fd,
        readable: true,
        writable: false,
        onread: { buffer: this.#staging, callback: (n: number) => this.#onRead(n) },
      };
      const socket = new net.Socket(options);
      socket.on('end', () => {
        this.#eof = true;
        this.#settle()?.resolve({ length: 0, eof: true });
      });
      socket.on('error', (error: Error) => {
        this.#error = error;
        this.#settle()?.reject(error);
      });
      this.#socket = socket;
    });
  }

  /** libuv put `n` bytes at the start of #staging. Returns false: reading stops until the next wait. */
  #onRead(n: number): boolean {
    this.#carryStart = 0;
    this.#carryEnd = n;
    const waiting = this.#settle();
    // Reading stops whenever nobody waits, so this is not expected; the bytes stay carried.
    if (waiting) waiting.resolve({ length: this.#takeCarry(waiting.buffer, 0), eof: false });
    return false;
  }

  #settle(): Waiting | undefined {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    return waiting;
  }

  /** The carried bytes into `buffer` at `offset`, as many as fit. Returns the new length. */
  #takeCarry(buffer: Buffer, offset: number): number {
    const taken = Math.min(this.#carryEnd - this.#carryStart, buffer.length - offset);
    this.#staging.copy(buffer, offset, this.#carryStart, this.#carryStart + taken);
    this.#carryStart += taken;
    return offset + taken;
  }

  #end(): void {
    this.#eof = true;
    this.#socket?.destroy();
  }
}

function readAsync(fd: number, buffer: Buffer, offset: number, length: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.read(fd, buffer, offset, length, null, (error, n) => (error ? reject(error) : resolve(n)));
  });
}
