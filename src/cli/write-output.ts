import fs from 'node:fs';
import net from 'node:net';
import { errnoCode } from '../errors.js';

/** The reader of our output went away (`filebus consumer | head`). */
export class OutputClosedError extends Error {
  override readonly name = 'OutputClosedError';
}

/** Set once a descriptor turned out to be non-blocking: from then on libuv writes it. */
const streams = new Map<number, net.Socket>();

/**
 * Writes a whole buffer to a descriptor. Resolves only when the kernel has
 * every byte: the caller treats that as delivered.
 *
 * A blocking descriptor is written in libuv's thread pool, so signals are
 * still handled while a slow reader blocks us. A non-blocking one (a socket
 * from a Node parent's `stdio: 'pipe'`, or a pipe someone made
 * non-blocking) answers EAGAIN when full; it is then handed to a libuv
 * stream, which waits for room with epoll. (Sleeping and retrying cost a
 * millisecond per full buffer: a third of the throughput into a socket.)
 */
export async function writeAll(fd: number, buffer: Buffer): Promise<void> {
  const stream = streams.get(fd);
  if (stream) return writeStream(stream, buffer);
  let offset = 0;
  while (offset < buffer.length) {
    try {
      offset += await writeOnce(fd, buffer, offset);
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'EPIPE' || code === 'ECONNRESET') throw new OutputClosedError('output closed');
      if (code !== 'EAGAIN') throw error;
      return writeStream(streamFor(fd), buffer.subarray(offset));
    }
  }
}

function writeOnce(fd: number, buffer: Buffer, offset: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.write(fd, buffer, offset, buffer.length - offset, null, (error, written) => (error ? reject(error) : resolve(written)));
  });
}

function streamFor(fd: number): net.Socket {
  const stream = new net.Socket({ fd, readable: false, writable: true });
  // Failures are reported through each write's callback.
  stream.on('error', () => {});
  streams.set(fd, stream);
  return stream;
}

function writeStream(stream: net.Socket, buffer: Buffer): Promise<void> {
  if (buffer.length === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    stream.write(buffer, (error) => {
      if (!error) return resolve();
      const code = errnoCode(error);
      reject(code === 'EPIPE' || code === 'ECONNRESET' || code === 'ERR_STREAM_DESTROYED' ? new OutputClosedError('output closed') : error);
    });
  });
}
