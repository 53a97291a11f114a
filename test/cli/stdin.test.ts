/**
 * How the producer reads standard input: a regular file, a real pipe (a
 * shell pipeline) and a socket (a Node parent's stdio 'pipe') must all give
 * back the same bytes, and a pause in piped input must cut a chunk.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256, randomData } from '../helpers/cli.js';
import { runShell, startFilebus } from '../helpers/procs.js';
import { until } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';

const tmp = useBusDir('filebus-stdin-');

describe('producer stdin', () => {
  for (const { size, blockSize } of [
    { size: 20_011, blockSize: 7 },
    { size: 1_000_003, blockSize: 4096 },
    { size: 5_000_000, blockSize: 1_048_576 },
    { size: 0, blockSize: 4096 },
  ]) {
    for (const via of ['file', 'shell pipe'] as const) {
      it(`${via}, ${size} bytes, --block-size ${blockSize}: the consumer gets exactly the input`, async () => {
        const input = path.join(tmp.dir, 'input');
        const data = randomData(size);
        fs.writeFileSync(input, data);
        const bus = path.join(tmp.dir, 'bus');
        const flags = ['--filename', bus, '--back-pressure', '--block-size', String(blockSize)];
        const consumer = startFilebus([...flags, 'consumer'], { stdin: 'pipe' });
        const script = via === 'file' ? '"$NODE" "$BIN" "$@" producer < "$INPUT"' : 'cat "$INPUT" | "$NODE" "$BIN" "$@" producer';
        const producer = await runShell(script, flags, { INPUT: input });
        expect(producer).toEqual({ code: 0, stderr: '' });
        const out = await consumer.ended;
        expect(out.code).toBe(0);
        expect(out.stdout.length).toBe(size);
        expect(sha256(out.stdout)).toBe(sha256(data));
      }, 60_000);
    }
  }

  it('a pause in piped input publishes what came before it as a chunk of its own', async () => {
    const bus = path.join(tmp.dir, 'bus');
    const fifo = path.join(tmp.dir, 'input.fifo');
    expect((await runShell('mkfifo "$FIFO"', [], { FIFO: fifo })).code).toBe(0);
    const flags = ['--filename', bus, '--multicast'];
    const consumer = startFilebus([...flags, 'consumer'], { stdin: 'pipe' });
    const producer = runShell('"$NODE" "$BIN" "$@" -vv producer < "$FIFO"', flags, { FIFO: fifo });
    // Opening the write end waits for the producer's shell to open the read end.
    const writer = fs.openSync(fifo, 'w');
    // Written only once the producer is registered, i.e. running and reading.
    await until(() => fs.existsSync(`${bus}.producers`) && fs.readdirSync(`${bus}.producers`).length > 0, 'the producer to start', 15_000);
    for (const piece of ['one', 'two', 'three']) {
      fs.writeSync(writer, piece);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    fs.closeSync(writer);
    const produced = await producer;
    expect(produced.code).toBe(0);
    expect(produced.stderr.split('\n').filter((line) => line.includes('published chunk'))).toHaveLength(3);
    const out = await consumer.ended;
    expect(out.code).toBe(0);
    expect(out.stdout.toString()).toBe('onetwothree');
  }, 30_000);

  // A read of stdin blocked in libuv's thread pool used to hold up the exit
  // of a producer that had failed: it printed its error, then hung until more
  // input came. The writer here stays open and silent.
  it('a producer that fails while its piped input is idle exits at once with one line', async () => {
    const bus = path.join(tmp.dir, 'bus');
    const fifo = path.join(tmp.dir, 'input.fifo');
    expect((await runShell('mkfifo "$FIFO"', [], { FIFO: fifo })).code).toBe(0);
    const flags = ['--filename', bus];
    const producer = runShell('"$NODE" "$BIN" "$@" producer < "$FIFO"', flags, { FIFO: fifo });
    const writer = fs.openSync(fifo, 'w');
    try {
      fs.writeSync(writer, 'one');
      await until(() => fs.existsSync(bus) && fs.readFileSync(bus, 'utf8') === 'one', 'the first chunk', 15_000);
      // FILE becomes a directory with something in it: the next publish cannot rename over it.
      fs.rmSync(bus);
      fs.mkdirSync(bus);
      fs.writeFileSync(path.join(bus, 'keep'), '');
      fs.writeSync(writer, 'two');
      const timeout = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 10_000).unref());
      const result = await Promise.race([producer, timeout]);
      expect(result).not.toBe('hung');
      if (result === 'hung') return;
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/^filebus: [^\n]*bus[^\n]*\n$/);
    } finally {
      fs.closeSync(writer);
      await producer;
    }
  }, 30_000);
});
