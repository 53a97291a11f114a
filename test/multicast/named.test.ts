/**
 * Named multicast consumers: a cursor that survives SIGKILL and a restart
 * (at-least-once at exactly one boundary chunk), retention held by a dead
 * named consumer without blocking the producer, and remove-consumer.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomData, writeInput, mc } from '../helpers/cli.js';
import { startFilebus, runFilebus } from '../helpers/procs.js';
import { within, until } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';
import { segments, cursorPath, cursorIds, registered, readCursor, tempFiles, busLockFree } from '../helpers/bus-layout.js';
import { RECORD_SIZE, records, parseRecords } from '../helpers/records.js';

const tmp = useBusDir('filebus-multicast-');

describe('named multicast consumer', () => {
  // Small chunks: the kill lands between whole chunks. 64 KiB chunks, read
  // slowly: the kill usually lands in the middle of writing one out.
  it.each([
    { block: 4096, chunks: 600, killAfter: 150, throttle: 4096 },
    { block: 65536, chunks: 64, killAfter: 16, throttle: 16384 },
  ])('killed with SIGKILL and restarted, it resumes at its cursor: at most the boundary chunk repeats ($block-byte chunks)', async ({ block, chunks, killAfter, throttle }) => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const input = records('R', (chunks * block) / RECORD_SIZE);
    const inputFile = writeInput(dir, 'input', input);

    const first = startFilebus(mc(bus, '--name', 'alice', 'consumer'), { paused: true });
    await until(() => registered(bus, 'alice'), 'alice to register');
    expect(readCursor(cursorPath(bus, 'alice'))).toBe(1);
    first.throttle(throttle, 2);
    const producer = startFilebus(mc(bus, '--block-size', String(block), 'producer'), { stdin: { file: inputFile } });

    await until(() => first.stdoutBytes() >= killAfter * block, `alice to receive ${killAfter} chunks`);
    first.child.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    // The cursor names the next segment to emit; the kill may have come
    // before it moved past a chunk that was (partly) written out.
    const cursor = readCursor(cursorPath(bus, 'alice'))!;
    first.flow(); // what alice wrote before dying is still in the socket
    const run1 = (await first.ended).stdout;

    // Dead, alice does not hold the producer back (256-chunk window, more unread with 4 KiB chunks) ...
    const produced = await within(producer.ended, 30_000, 'the producer to finish while alice is dead');
    expect(produced).toMatchObject({ code: 0, stderr: '' });
    // ... but every segment she has not read is still there.
    const held = segments(bus).filter((s) => s.seq >= cursor).map((s) => s.seq);
    expect(held).toEqual(Array.from({ length: chunks + 2 - cursor }, (_, i) => cursor + i));

    const second = await within(startFilebus(mc(bus, '--name', 'alice', 'consumer')).ended, 30_000, 'alice, restarted');
    expect({ code: second.code, stderr: second.stderr }).toEqual({ code: 0, stderr: '' });
    const run2 = second.stdout;

    // The restart begins exactly at the chunk the cursor names, and runs to the end.
    const boundary = (cursor - 1) * block;
    expect(run2.length).toBe(input.length - boundary);
    expect(run2.equals(input.subarray(boundary))).toBe(true);
    // The first run is a prefix of the input reaching at least to the
    // boundary, and at most through the boundary chunk: that one chunk (or a
    // prefix of it, if the kill cut a write short) is all that repeats.
    expect(run1.equals(input.subarray(0, run1.length))).toBe(true);
    expect(run1.length).toBeGreaterThanOrEqual(boundary);
    expect(run1.length).toBeLessThanOrEqual(boundary + block);
    const repeated = run1.subarray(boundary);
    expect(repeated.equals(run2.subarray(0, repeated.length))).toBe(true);
    // Without the repeat, the two runs are the input, record for record.
    const joined = Buffer.concat([run1.subarray(0, boundary), run2]);
    const got = parseRecords(joined);
    expect(got.length).toBe(input.length / RECORD_SIZE);
    expect(got.every((r, i) => r.tag === 'R' && r.seq === i)).toBe(true);
    expect(joined.equals(input)).toBe(true);
    // alice read the end marker: her cursor is past it.
    expect(readCursor(cursorPath(bus, 'alice'))).toBe(chunks + 2);
  });

  it('stopped with SIGTERM, it dies of SIGTERM without a word and keeps its cursor', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const dave = startFilebus(mc(bus, '--name', 'dave', 'consumer'));
    await until(() => registered(bus, 'dave') && busLockFree(bus), 'dave to register and wait');
    dave.child.kill('SIGTERM');
    const ended = await within(dave.ended, 10_000, 'dave to stop');
    expect({ code: ended.code, signal: ended.signal, stderr: ended.stderr }).toEqual({ code: null, signal: 'SIGTERM', stderr: '' });
    expect(readCursor(cursorPath(bus, 'dave'))).toBe(1);
    const removed = await runFilebus(mc(bus, 'remove-consumer', 'dave'));
    expect({ code: removed.code, stderr: removed.stderr }).toEqual({ code: 0, stderr: '' });
  });

  it('remove-consumer refuses while the consumer runs, then releases the segments it held', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const block = 4096;
    const window = 8;

    const bob = startFilebus(mc(bus, '--name', 'bob', 'consumer'));
    const watcher = startFilebus(mc(bus, 'consumer'));
    await until(() => cursorIds(bus).length === 2, 'bob and the watcher to register');
    const producer = startFilebus(mc(bus, '--window', String(window), '--block-size', String(block), 'producer'), { stdin: 'pipe' });
    let sent = 0;
    const send = async (data: Buffer): Promise<void> => {
      producer.stdin!.write(data);
      sent += data.length;
      await until(() => watcher.stdoutBytes() === sent, `the watcher to receive ${sent} bytes`);
    };

    const data = randomData(64 * block);
    await send(data.subarray(0, 4 * block));
    await until(() => bob.stdoutBytes() === 4 * block, 'bob to receive 4 chunks');

    const refused = await runFilebus(mc(bus, 'remove-consumer', 'bob'));
    expect(refused.code).toBe(1);
    expect(refused.stdout.length).toBe(0);
    expect(refused.stderr).toBe(`filebus: consumer bob is running; stop it before removing it\n`);
    expect(cursorIds(bus)).toContain('bob');

    bob.child.kill('SIGKILL');
    const stopped = await bob.ended;
    expect(stopped.signal).toBe('SIGKILL');
    expect(stopped.stdout.equals(data.subarray(0, 4 * block))).toBe(true);
    const bobAt = readCursor(cursorPath(bus, 'bob'))!;
    expect(bobAt).toBeGreaterThanOrEqual(4);
    expect(bobAt).toBeLessThanOrEqual(5);

    // Stopped, bob no longer holds the producer back, but keeps what he has not read.
    await send(data.subarray(4 * block, 40 * block));
    const heldBefore = segments(bus);
    const head = heldBefore.at(-1)!.seq;
    expect(heldBefore.length).toBeGreaterThan(window);
    expect(heldBefore.filter((s) => s.seq >= bobAt).map((s) => s.seq))
      .toEqual(Array.from({ length: head - bobAt + 1 }, (_, i) => bobAt + i));

    const removed = await runFilebus(mc(bus, 'remove-consumer', 'bob'));
    expect({ code: removed.code, stdout: removed.stdout.toString(), stderr: removed.stderr }).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(fs.existsSync(cursorPath(bus, 'bob'))).toBe(false);
    expect(cursorIds(bus).filter((id) => !id.startsWith('~'))).toEqual([]);
    // Removing does not delete segments by itself ...
    expect(segments(bus).map((s) => s.seq)).toEqual(heldBefore.map((s) => s.seq));

    // ... the next publish past the window does: down to half the window,
    // the new segment included (so the oldest left is head - 2).
    await send(data.subarray(40 * block, 41 * block));
    const after = segments(bus);
    const newHead = after.at(-1)!.seq;
    expect(newHead).toBeGreaterThan(head);
    expect(after.map((s) => s.seq)).toEqual(Array.from({ length: newHead - head + 3 }, (_, i) => head - 2 + i));
    expect(after.length).toBeLessThanOrEqual(window);

    producer.stdin!.end();
    expect(await within(producer.ended, 20_000, 'the producer')).toMatchObject({ code: 0, stderr: '' });
    const watched = await within(watcher.ended, 20_000, 'the watcher');
    expect({ code: watched.code, stderr: watched.stderr }).toEqual({ code: 0, stderr: '' });
    expect(watched.stdout.equals(data.subarray(0, 41 * block))).toBe(true);

    const again = await runFilebus(mc(bus, 'remove-consumer', 'bob'));
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`filebus: no consumer named bob on ${bus}\n`);
  });

  it('killed while joining, before its cursor has its first position, it leaves no cursor and joins afresh when restarted', async () => {
    const dir = tmp.dir;
    const bus = path.join(dir, 'bus');
    const input = records('J', 200);
    // strace kills it at its first pwrite: the cursor's first record.
    const strace = ['strace', '-f', '-qq', '-o', '/dev/null', '-e', 'trace=pwrite64', '-e', 'inject=pwrite64:signal=KILL:when=1', process.execPath];
    const killed = await runFilebus(mc(bus, '--name', 'carol', 'consumer'), { prefix: strace, timeoutMs: 30_000 });
    // strace dies of the signal that killed what it traced.
    expect({ code: killed.code, signal: killed.signal }).toEqual({ code: null, signal: 'SIGKILL' });
    // Its cursor never got its name (an empty one used to, and every restart then failed on it).
    expect(fs.existsSync(cursorPath(bus, 'carol'))).toBe(false);

    const produced = await runFilebus(mc(bus, 'producer'), { stdin: { file: writeInput(dir, 'input', input) } });
    expect({ code: produced.code, stderr: produced.stderr }).toEqual({ code: 0, stderr: '' });
    // It delivered nothing before, so it starts where any new consumer does: the whole retained stream.
    const again = await within(startFilebus(mc(bus, '--name', 'carol', 'consumer')).ended, 30_000, 'carol, restarted');
    expect({ code: again.code, stderr: again.stderr }).toEqual({ code: 0, stderr: '' });
    expect(again.stdout.equals(input)).toBe(true);
    expect(readCursor(cursorPath(bus, 'carol'))).toBe(segments(bus).at(-1)!.seq + 1);
    // The dead join's temporary file was swept.
    expect(tempFiles(bus)).toEqual([]);
  });
});
