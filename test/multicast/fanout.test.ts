/**
 * Multicast fan-out with real processes: every consumer gets every byte, and
 * a consumer that dies (SIGKILL) neither blocks the producer nor disturbs
 * the others.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomData, writeInput, mc } from '../helpers/cli.js';
import { startFilebus } from '../helpers/procs.js';
import { within, until } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { segments, cursorIds } from '../helpers/bus-layout.js';

const tmp = useBusDir('filebus-multicast-');

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('multicast fan-out', () => {
  it('delivers 64 MiB in 64 KiB chunks to 4 consumers, byte for byte', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const input = randomData(64 * 1024 * 1024);
    const inputFile = writeInput(dir, 'input', input);
    const digest = sha(input);

    const consumers = Array.from({ length: 4 }, () => startFilebus(mc(bus, 'consumer'), { stdout: 'hash' }));
    // Joined before the first segment: every one starts at segment 1.
    await until(() => cursorIds(bus).length === 4, 'four consumers to register');

    const producer = startFilebus(mc(bus, '--block-size', '65536', 'producer'), { stdin: { file: inputFile } });
    const produced = await within(producer.ended, 60_000, 'the producer to finish');
    expect(produced.stderr).toBe('');
    expect(produced).toMatchObject({ code: 0, signal: null });

    const results = await within(Promise.all(consumers.map((c) => c.ended)), 60_000, 'the consumers to finish');
    results.forEach((result, i) => {
      expect(result.stderr).toBe('');
      expect({ code: result.code, signal: result.signal, bytes: result.bytes }).toEqual({ code: 0, signal: null, bytes: input.length });
      expect(consumers[i]!.stdoutSha256()).toBe(digest);
    });
    // Anonymous cursors go with their consumers.
    expect(cursorIds(bus)).toEqual([]);
    // 1024 full chunks and the end marker: the newest segment is number 1025, and empty.
    const last = segments(bus).at(-1)!;
    expect(last.seq).toBe(1025);
    expect(last.crc).toBe(0);
  });

  it('a consumer killed mid-stream blocks nobody: the producer finishes and the other two get everything', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const input = randomData(16 * 1024 * 1024);
    const inputFile = writeInput(dir, 'input', input);
    const window = 32;
    const block = 65536;

    const [a, b] = [startFilebus(mc(bus, 'consumer'), { stdout: 'hash' }), startFilebus(mc(bus, 'consumer'), { stdout: 'hash' })];
    // The victim never gets read, so it stalls once its output socket is full
    // and, being live, holds the producer to the window.
    const victim = startFilebus(mc(bus, 'consumer'), { stdout: 'hash', paused: true });
    await until(() => cursorIds(bus).length === 3, 'three consumers to register');
    const victimId = cursorIds(bus).find((id) => id.includes(`.${victim.pid}.`));
    expect(victimId).toBeDefined();

    const producer = startFilebus(mc(bus, '--window', String(window), '--block-size', String(block), 'producer'), { stdin: { file: inputFile } });
    // Mid-stream: the others have a good part of a window, far from the 256 chunks of the input.
    await until(() => a.stdoutBytes() >= (window / 2) * block && b.stdoutBytes() >= (window / 2) * block, 'the live consumers to get half a window');
    expect(producer.child.exitCode).toBeNull();
    expect(segments(bus).length).toBeLessThanOrEqual(window);
    victim.child.kill('SIGKILL');
    expect(await victim.exited).toEqual({ code: null, signal: 'SIGKILL' });
    victim.flow();

    const produced = await within(producer.ended, 30_000, 'the producer to finish after the victim died');
    expect(produced.stderr).toBe('');
    expect(produced.code).toBe(0);
    const survivors = [a, b];
    (await within(Promise.all(survivors.map((c) => c.ended)), 30_000, 'the surviving consumers')).forEach((result, i) => {
      expect({ code: result.code, bytes: result.bytes, stderr: result.stderr }).toEqual({ code: 0, bytes: input.length, stderr: '' });
      expect(survivors[i]!.stdoutSha256()).toBe(sha(input));
    });
    const killed = await victim.ended;
    expect(killed.bytes).toBeLessThan(input.length);
    // The dead anonymous consumer's cursor was swept by the producer; the others removed their own.
    expect(cursorIds(bus)).toEqual([]);
  });
});
