import fs from 'node:fs';
import net from 'node:net';
import tty from 'node:tty';
import { fcntlSync } from 'fs-ext';
import { errnoCode } from '../errors.js';

/** The reader of our output went away (`filebus consumer | head`). */
export class OutputClosedError extends Error {
  override readonly name = 'OutputClosedError';
}

/** Writes a whole buffer; resolves once the kernel has every byte. */
type Writer = (buffer: Buffer) => Promise<void>;

const writers = new Map<number, Writer>();

/**
 * Writes a whole buffer to a descriptor. Resolves only when the kernel has
 * every byte: the caller treats that as delivered. How depends on what the
 * descriptor is, chosen once:
 *
 * - a regular file or /dev/null: written at once (it never waits on a reader);
 * - non-blocking (a socket from a Node parent's `stdio: 'pipe'`): a libuv
 *   stream, which waits for room with epoll;
 * - a pipe: first without blocking, through a second, non-blocking open of
 *   the same pipe, and only when the pipe is full in the thread pool;
 * - anything else (a terminal, a blocking socket): in the thread pool.
 *
 * Never a blocking write on the main thread: with a reader that stops
 * reading, signals would go unhandled until it reads again.
 */
export function writeAll(fd: number, buffer: Buffer): Promise<void> {
  let writer = writers.get(fd);
  if (!writer) {
    writer = writerFor(fd);
    writers.set(fd, writer);
  }
  return writer(buffer);
}

function writerFor(fd: number): Writer {
  let st: fs.Stats | undefined;
  try {
    st = fs.fstatSync(fd);
  } catch { /* let the first write report it */ }
  if (st && (st.isFile() || (st.isCharacterDevice() && !tty.isatty(fd)))) return (buffer) => writeNow(fd, buffer);
  if (isNonBlocking(fd)) return streamWriter(fd);
  if (st?.isFIFO()) {
    const nonBlocking = reopenNonBlocking(fd);
    if (nonBlocking !== undefined) return (buffer) => writeNowThenWait(nonBlocking, fd, buffer);
  }
  return (buffer) => writeInPool(fd, buffer, 0);
}

/** F_GETFL, through fs-ext (Node has no fcntl); unknown counts as blocking. */
function isNonBlocking(fd: number): boolean {
  try {
    const F_GETFL = 3; // the same on Linux and the BSDs
    return (fcntlSync(fd, F_GETFL) & fs.constants.O_NONBLOCK) !== 0;
  } catch {
    return false;
  }
}

function reopenNonBlocking(fd: number): number | undefined {
  try {
    return fs.openSync(`/proc/self/fd/${fd}`, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
}

function closed(error: unknown): unknown {
  const code = errnoCode(error);
  return code === 'EPIPE' || code === 'ECONNRESET' || code === 'ERR_STREAM_DESTROYED' ? new OutputClosedError('output closed') : error;
}

async function writeNow(fd: number, buffer: Buffer): Promise<void> {
  try {
    for (let offset = 0; offset < buffer.length;) offset += fs.writeSync(fd, buffer, offset);
  } catch (error) {
    throw closed(error);
  }
}

async function writeNowThenWait(nonBlocking: number, fd: number, buffer: Buffer): Promise<void> {
  let offset = 0;
  try {
    while (offset < buffer.length) offset += fs.writeSync(nonBlocking, buffer, offset);
  } catch (error) {
    if (errnoCode(error) !== 'EAGAIN') throw closed(error);
    // The pipe is full: wait for the reader off the main thread.
    await writeInPool(fd, buffer, offset);
  }
}

async function writeInPool(fd: number, buffer: Buffer, offset: number): Promise<void> {
  while (offset < buffer.length) {
    try {
      offset += await new Promise<number>((resolve, reject) => {
        fs.write(fd, buffer, offset, buffer.length - offset, null, (error, written) => (error ? reject(error) : resolve(written)));
      });
    } catch (error) {
      if (errnoCode(error) !== 'EAGAIN') throw closed(error);
      // Someone made the descriptor non-blocking after we looked: libuv from here on.
      const writer = streamWriter(fd);
      writers.set(fd, writer);
      return writer(buffer.subarray(offset));
    }
  }
}

function streamWriter(fd: number): Writer {
  const stream = new net.Socket({ fd, readable: false, writable: true });
  // Failures are reported through each write's callback.
  stream.on('error', () => {});
  return (buffer) => new Promise<void>((resolve, reject) => {
    if (buffer.length === 0) return resolve();
    stream.write(buffer, (error) => (error ? reject(closed(error)) : resolve()));
  });
}
