import fs from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { errnoCode } from '../errors.js';

/** The reader of our output went away (`filebus consumer | head`). */
export class OutputClosedError extends Error {
  override readonly name = 'OutputClosedError';
}

/**
 * Writes a whole buffer to a descriptor. Resolves only when the kernel has
 * every byte: the caller treats that as delivered. Runs in libuv's thread
 * pool, so signals are still handled while a slow reader blocks us.
 */
export async function writeAll(fd: number, buffer: Buffer): Promise<void> {
  let offset = 0;
  while (offset < buffer.length) {
    try {
      offset += await writeOnce(fd, buffer, offset);
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'EPIPE' || code === 'ECONNRESET') throw new OutputClosedError('output closed');
      // A descriptor someone else made non-blocking (we never do): wait for
      // the reader to catch up rather than fail.
      if (code === 'EAGAIN') { await delay(1); continue; }
      throw error;
    }
  }
}

function writeOnce(fd: number, buffer: Buffer, offset: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.write(fd, buffer, offset, buffer.length - offset, null, (error, written) => (error ? reject(error) : resolve(written)));
  });
}
