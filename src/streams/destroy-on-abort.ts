import type { Stream } from 'node:stream';
import { abortError } from '../errors.js';

/**
 * Destroys the stream with ERR_FILEBUS_ABORTED when the signal aborts, so
 * every way of using a producer or consumer sees the same typed error. Not
 * Node's `signal` stream option: that one can destroy the stream inside
 * super(), before the subclass exists.
 */
export function destroyOnAbort(stream: Stream & { destroy(error?: Error): unknown }, signal: AbortSignal | undefined): void {
  if (!signal) return;
  if (signal.aborted) {
    process.nextTick(() => stream.destroy(abortError()));
    return;
  }
  const onAbort = (): void => { stream.destroy(abortError()); };
  signal.addEventListener('abort', onAbort, { once: true });
  stream.once('close', () => signal.removeEventListener('abort', onAbort));
}
