import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomData, exclusively } from '../helpers/cli.js';
import { startFilebus, runFilebus, waitForWatch } from '../helpers/procs.js';
import { within, until } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { listTree } from '../helpers/bus-layout.js';

const tmp = useBusDir('filebus-cli-lossy-');

/**
 * A lossy consumer never exits on its own: check it is still there, then end
 * it with SIGKILL (SIGINT/SIGTERM handling has its own tests in safety.test.ts).
 */
async function stopConsumer(consumer: ReturnType<typeof startFilebus>): Promise<void> {
  expect(consumer.running()).toBe(true);
  expect(consumer.stderr()).toBe('');
  consumer.child.kill('SIGKILL');
  expect(await consumer.done).toEqual({ code: null, signal: 'SIGKILL' });
}

describe('lossy mode', () => {
  it('a consumer started after the producer finished prints exactly the latest chunk', async () => {
    const blockSize = 1000;
    // 4 full blocks and a short last one, NUL bytes included.
    const input = Buffer.concat([randomData(4 * blockSize), Buffer.from('\0last chunk\0no newline')]);
    const last = input.subarray(4 * blockSize);
    const inputFile = path.join(tmp.dir, 'input.bin');
    fs.writeFileSync(inputFile, input);
    const producer = await runFilebus(['--filename', tmp.bus, '--block-size', String(blockSize), 'producer'], { stdin: { file: inputFile } });
    fs.rmSync(inputFile);
    expect(producer).toMatchObject({ code: 0, signal: null, stderr: '' });
    // No end marker in lossy mode: FILE holds the last chunk, and no temporary file is left.
    expect(listTree(tmp.dir)).toEqual(['bus', 'bus.lock']);
    expect(fs.readFileSync(tmp.bus).equals(last)).toBe(true);

    const consumer = startFilebus(['--filename', tmp.bus, 'consumer'], { stdin: 'ignore' });
    await until(() => consumer.stdoutBytes() >= last.length, 'the latest chunk', 15_000);
    await waitForWatch(consumer.pid);
    // It is now waiting for a new chunk; make sure the same one is not printed again.
    await new Promise((r) => setTimeout(r, 300));
    await stopConsumer(consumer);
    expect(consumer.stdout().equals(last), `got ${JSON.stringify(consumer.stdout().toString('latin1').slice(0, 80))}`).toBe(true);
  });

  it('a late consumer prints the current chunk, then each later one', async () => {
    const first = await runFilebus(['--filename', tmp.bus, 'producer'], { input: 'before the consumer\n' });
    expect(first).toMatchObject({ code: 0, signal: null, stderr: '' });
    const consumer = startFilebus(['--filename', tmp.bus, 'consumer'], { stdin: 'ignore' });
    await until(() => consumer.stdout().toString() === 'before the consumer\n', 'the current chunk', 15_000);
    await waitForWatch(consumer.pid);
    const second = await runFilebus(['--filename', tmp.bus, 'producer'], { input: 'after the consumer\n' });
    expect(second).toMatchObject({ code: 0, signal: null, stderr: '' });
    await until(() => consumer.stdoutBytes() >= 'before the consumer\nafter the consumer\n'.length, 'the new chunk', 15_000);
    await new Promise((r) => setTimeout(r, 300));
    await stopConsumer(consumer);
    expect(consumer.stdout().toString()).toBe('before the consumer\nafter the consumer\n');
  });

  // Timing matters here (a lossy consumer that looks too late misses a
  // message), so this waits for the CPU-heavy tests of other files to finish.
  it('two consumers watching both get every message of a slow producer, once each, in order', () => exclusively('timing', async () => {
    const consumers = [0, 1].map(() => startFilebus(['--filename', tmp.bus, 'consumer'], { stdin: 'ignore' }));
    const producer = startFilebus(['--filename', tmp.bus, 'producer'], { stdin: 'pipe' });
    // Handshake: a consumer prints the current chunk when it starts, so once
    // both have printed this one, both are watching.
    const hello = 'hello\n';
    producer.child.stdin!.write(hello);
    for (const c of consumers) await until(() => c.stdout().toString() === hello, 'the hello message at each consumer', 15_000);
    const messages = Array.from({ length: 30 }, (_, i) => `event #${i} ${'.'.repeat(i % 5)}\0\n`);
    for (const message of messages) {
      producer.child.stdin!.write(message);
      await new Promise((r) => setTimeout(r, 50));
    }
    producer.child.stdin!.end();
    expect(await within(producer.done, 15_000, 'the producer')).toEqual({ code: 0, signal: null });
    expect(producer.stderr()).toBe('');
    const expected = hello + messages.join('');
    for (const c of consumers) {
      // On a timeout, fall through: the comparison below shows what arrived.
      await until(() => c.stdout().toString().endsWith(messages.at(-1)!), 'the last message', 15_000).catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 300));
    for (const c of consumers) await stopConsumer(c);
    // Line by line first, for a readable difference; then the exact bytes.
    for (const c of consumers) expect(c.stdout().toString().split('\n')).toEqual(expected.split('\n'));
    for (const c of consumers) expect(c.stdout().toString()).toBe(expected);
  }), 300_000);
});
