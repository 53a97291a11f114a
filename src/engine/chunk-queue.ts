/**
 * Bytes written to a producer and not yet published. Chunks are cut from it
 * by size only, never by content, so any bytes (NUL, no newline) pass as-is.
 */
export class ChunkQueue {
  #buffers: Buffer[] = [];
  #bytes = 0;

  get bytes(): number {
    return this.#bytes;
  }

  push(buffer: Buffer): void {
    if (buffer.length === 0) return;
    this.#buffers.push(buffer);
    this.#bytes += buffer.length;
  }

  /** Removes and returns up to `max` bytes from the front, without copying. */
  take(max: number): Buffer[] {
    const out: Buffer[] = [];
    let room = max;
    while (room > 0 && this.#buffers.length > 0) {
      const head = this.#buffers[0]!;
      if (head.length <= room) {
        out.push(head);
        this.#buffers.shift();
        room -= head.length;
      } else {
        out.push(head.subarray(0, room));
        this.#buffers[0] = head.subarray(room);
        room = 0;
      }
    }
    this.#bytes -= max - room;
    return out;
  }
}
