/**
 * Where a chunk is read into. `fresh` gives every chunk its own buffer, which
 * the caller may keep. `reused` hands out views of one buffer that grows to
 * the largest chunk seen: no allocation per chunk, so a long stream leaves
 * no trail of dead buffers for the garbage collector (V8 collects buffer
 * memory only once a lot of it has piled up, which was most of a streaming
 * process's peak RSS: docs/performance.md, "What changed since the first
 * run"). Its views are valid until the next read.
 */
export interface ReadBuffer {
  /** A buffer of exactly `size` bytes to read a chunk into. */
  take(size: number): Buffer;
}

export const freshReadBuffer: ReadBuffer = {
  take: (size) => Buffer.allocUnsafe(size),
};

export function reusedReadBuffer(): ReadBuffer {
  let buffer = Buffer.allocUnsafeSlow(0);
  return {
    take(size) {
      if (buffer.length < size) buffer = Buffer.allocUnsafeSlow(Math.max(size, buffer.length * 2));
      return buffer.subarray(0, size);
    },
  };
}
