/**
 * Writes numbered 4 KiB loss records (sinks.ts) to stdout at a steady rate,
 * one write(2) per record, for the lossy case: `paced-writer.ts COUNT RATE`.
 *
 * A process of its own, so that pacing at 1 ms does not stall the harness,
 * which reads the consumers. It sleeps in Atomics.wait (sub-millisecond,
 * no busy loop) until each record is due. At the end it prints one line
 * `WRITER {json}` on stderr: records sent, seconds, and how late it fell.
 */
import fs from 'node:fs';
import { lossRecord } from './sinks.js';

const count = Number(process.argv[2]);
const rate = Number(process.argv[3]);
if (!Number.isSafeInteger(count) || count <= 0 || !(rate > 0)) {
  process.stderr.write('usage: paced-writer.ts COUNT RATE\n');
  process.exit(2);
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
const periodNs = 1e9 / rate;
const start = process.hrtime.bigint();
let maxLateNs = 0;

function writeAll(buffer: Buffer): void {
  let offset = 0;
  while (offset < buffer.length) {
    try {
      offset += fs.writeSync(1, buffer, offset);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      Atomics.wait(sleeper, 0, 0, 0.2);
    }
  }
}

for (let n = 0; n < count; n++) {
  const due = start + BigInt(Math.round(n * periodNs));
  const aheadNs = Number(due - process.hrtime.bigint());
  if (aheadNs > 20_000) Atomics.wait(sleeper, 0, 0, aheadNs / 1e6);
  else maxLateNs = Math.max(maxLateNs, -aheadNs);
  writeAll(lossRecord(n));
}
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
process.stderr.write(`WRITER ${JSON.stringify({ sent: count, seconds, maxLateMs: maxLateNs / 1e6 })}\n`);
