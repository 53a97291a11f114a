/**
 * Where the consumer writes: a regular file, /dev/null, a shell pipe whose
 * reader stalls (so the pipe fills and writes must wait), a socket from a
 * Node parent, and a pipe its parent made non-blocking. Each must get
 * exactly the bytes published.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fcntlSync } from 'fs-ext';
import { describe, expect, it } from 'vitest';
import { sha256, randomData } from '../helpers/cli.js';
import { runShell, startFilebus } from '../helpers/procs.js';
import { useBusDir } from '../helpers/bus-dir.js';

const tmp = useBusDir('filebus-stdout-');

describe('consumer stdout', () => {
  const data = randomData(3_000_017);
  const cases = [
    { name: 'a regular file', script: 'out=$1; shift; "$NODE" "$BIN" "$@" consumer > "$out"' },
    { name: 'a shell pipe whose reader starts late', script: 'out=$1; shift; "$NODE" "$BIN" "$@" consumer | (sleep 1; cat > "$out")' },
    { name: '/dev/null (exit status only)', script: 'shift; "$NODE" "$BIN" "$@" consumer > /dev/null' },
  ];
  for (const { name, script } of cases) {
    for (const mode of ['--back-pressure', '--multicast'] as const) {
      it(`${mode}, ${name}: exit 0 and exactly the input`, async () => {
        const bus = path.join(tmp.dir, 'bus');
        const out = path.join(tmp.dir, 'result');
        const flags = ['--filename', bus, mode, '--block-size', '65536'];
        const consumer = runShell(script, [out, ...flags]);
        if (mode === '--multicast') {
          const consumers = `${bus}.consumers`;
          for (let i = 0; i < 300 && !(fs.existsSync(consumers) && fs.readdirSync(consumers).length > 0); i++) await new Promise((r) => setTimeout(r, 20));
        }
        const input = path.join(tmp.dir, 'input');
        fs.writeFileSync(input, data);
        const producer = await startFilebus([...flags, 'producer'], { stdin: { file: input } }).ended;
        expect({ code: producer.code, stderr: producer.stderr }).toEqual({ code: 0, stderr: '' });
        expect(await consumer).toEqual({ code: 0, stderr: '' });
        if (!name.startsWith('/dev/null')) expect(sha256(fs.readFileSync(out))).toBe(sha256(data));
      }, 60_000);
    }
  }

  it('a socket from a Node parent, read slowly: exactly the input', async () => {
    const bus = path.join(tmp.dir, 'bus');
    const flags = ['--filename', bus, '--back-pressure', '--block-size', '1048576'];
    const consumer = startFilebus([...flags, 'consumer'], { stdin: 'pipe', paused: true });
    setTimeout(() => consumer.flow(), 500);
    const input = path.join(tmp.dir, 'input');
    fs.writeFileSync(input, data);
    const producer = await startFilebus([...flags, 'producer'], { stdin: { file: input } }).ended;
    expect(producer.code).toBe(0);
    const done = await consumer.ended;
    expect({ code: done.code, stderr: done.stderr }).toEqual({ code: 0, stderr: '' });
    expect(sha256(done.stdout)).toBe(sha256(data));
  }, 60_000);

  // O_NONBLOCK belongs to the open file description, which the consumer
  // shares with its parent here: once the parent sets it (after the spawn,
  // which makes a child's stdio blocking), the consumer's writes get EAGAIN
  // whenever the pipe is full, and must wait for room rather than fail or spin.
  it('a pipe its parent made non-blocking, read slowly: exactly the input', async () => {
    const bus = path.join(tmp.dir, 'bus');
    const flags = ['--filename', bus, '--back-pressure', '--block-size', '1048576'];
    const fifo = path.join(tmp.dir, 'out.fifo');
    execFileSync('mkfifo', [fifo]);
    const readFd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const writeFd = fs.openSync(fifo, fs.constants.O_WRONLY);
    const consumer = startFilebus([...flags, 'consumer'], { stdout: { fd: writeFd } });
    const [F_GETFL, F_SETFL] = [3, 4];
    fcntlSync(writeFd, F_SETFL, fcntlSync(writeFd, F_GETFL) | fs.constants.O_NONBLOCK);
    fs.closeSync(writeFd);
    const reader = new net.Socket({ fd: readFd, readable: true, writable: false });
    const out: Buffer[] = [];
    reader.on('data', (d: Buffer) => out.push(d));
    reader.pause();
    setTimeout(() => reader.resume(), 500);
    const ended = new Promise<void>((resolve) => reader.on('end', resolve));
    const input = path.join(tmp.dir, 'input');
    fs.writeFileSync(input, data);
    const producer = await startFilebus([...flags, 'producer'], { stdin: { file: input } }).ended;
    expect(producer.code).toBe(0);
    const exit = await consumer.ended;
    expect({ code: exit.code, stderr: exit.stderr }).toEqual({ code: 0, stderr: '' });
    await ended;
    expect(sha256(Buffer.concat(out))).toBe(sha256(data));
  }, 60_000);
});
