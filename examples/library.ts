// The Node API in one script: a producer and a consumer on one bus.
// Run: npx tsx examples/library.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Consumer, Producer } from 'filebus';

const dir = mkdtempSync(path.join(tmpdir(), 'filebus-example-'));
const filename = path.join(dir, 'bus');
const lines = Array.from({ length: 5 }, (_, i) => `message ${i + 1}\n`);

try {
  // Back-pressure mode: every chunk reaches exactly one consumer, and the
  // producer's end marker ends the consumer's loop.
  const consumer = new Consumer({ filename, mode: 'back-pressure' });
  const received = (async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of consumer) chunks.push(chunk);
    return Buffer.concat(chunks).toString();
  })();

  await pipeline(Readable.from(lines.map((line) => Buffer.from(line))), new Producer({ filename, mode: 'back-pressure' }));
  const text = await received;
  process.stdout.write(text);
  if (text !== lines.join('')) throw new Error('the consumer did not receive what the producer sent');
} finally {
  // The bus is a few files in its directory; a bus you are done with is removed like any files.
  rmSync(dir, { recursive: true, force: true });
}
