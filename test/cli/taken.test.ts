import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomData } from '../helpers/cli.js';
import { startFilebus, runFilebus } from '../helpers/procs.js';
import { within, until } from '../helpers/wait.js';
import { drainWithNextConsumer } from '../helpers/back-pressure.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { listTree } from '../helpers/bus-layout.js';

// Taken chunks (src/wire/taken-chunk.ts): a back-pressure consumer renames
// FILE to a .taken name of its own, held by flock, before writing it out.

const tmp = useBusDir('filebus-taken-', { ownDir: true });

const MiB = 1024 * 1024;
const takenNames = (): string[] => listTree(tmp.busDir).filter((name) => name.endsWith('.taken'));

function inputFile(data: Buffer): string {
  const file = path.join(tmp.dir, 'input');
  fs.writeFileSync(file, data);
  return file;
}

describe('taken chunks', () => {
  it('a consumer SIGKILLed while writing a chunk out: the next consumer delivers that chunk first, then the rest', async () => {
    const input = randomData(6 * MiB);
    const common = ['--filename', tmp.bus, '--back-pressure', '--block-size', String(MiB)];
    // Its output is a pipe nobody reads: it blocks inside the first chunk.
    const first = startFilebus([...common, 'consumer'], { stdin: 'ignore', stdout: 'unread' });
    const producer = startFilebus([...common, 'producer'], { stdin: { file: inputFile(input) } });
    // Taken off FILE, so the producer went on and published the next chunk there.
    await until(() => takenNames().length === 1 && fs.existsSync(tmp.bus), 'a taken chunk and the next one at FILE', 15_000);
    expect(fs.readFileSync(path.join(tmp.busDir, takenNames()[0]!)).equals(input.subarray(0, MiB))).toBe(true);
    expect(fs.readFileSync(tmp.bus).equals(input.subarray(MiB, 2 * MiB))).toBe(true);
    // status counts the taken chunk as still on the bus.
    const status = await runFilebus(['--filename', tmp.bus, 'status', '--json'], { stdin: 'ignore' });
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout.toString()).retained).toEqual({ chunks: 2, bytes: 2 * MiB, oldest: null, newest: null });
    process.kill(-first.pid, 'SIGKILL');
    await within(first.done, 10_000, 'the first consumer to die');

    await drainWithNextConsumer(common, producer, input);
  });

  it('the consumer that takes the end marker waits while another holds a chunk, and delivers it when that one dies', async () => {
    const input = randomData(2 * MiB);
    const common = ['--filename', tmp.bus, '--back-pressure', '--block-size', String(MiB)];
    const holder = startFilebus([...common, 'consumer'], { stdin: 'ignore', stdout: 'unread' });
    const producer = startFilebus([...common, 'producer'], { stdin: { file: inputFile(input) } });
    await until(() => takenNames().length === 1 && fs.existsSync(tmp.bus), 'chunk 1 taken, chunk 2 at FILE', 15_000);

    const last = startFilebus([...common, 'consumer'], { stdin: 'ignore' });
    expect(await within(producer.done, 15_000, 'the producer')).toEqual({ code: 0, signal: null });
    // It has chunk 2 and the end marker, but chunk 1 is still held: it waits.
    await until(() => last.stdoutBytes() === MiB && !fs.existsSync(tmp.bus), 'chunk 2 delivered and the end marker taken', 15_000);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(last.running()).toBe(true);

    process.kill(-holder.pid, 'SIGKILL');
    expect(await within(last.done, 15_000, 'the last consumer to end')).toEqual({ code: 0, signal: null });
    expect(last.stderr()).toBe('');
    // Across consumers there is no order; each chunk arrives once, whole.
    expect(last.stdout().equals(Buffer.concat([input.subarray(MiB), input.subarray(0, MiB)]))).toBe(true);
    expect(listTree(tmp.busDir)).toEqual(['bus.lock']);
  });
});
