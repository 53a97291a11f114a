/**
 * Where the consumer writes: a regular file, /dev/null, a shell pipe whose
 * reader stalls (so the pipe fills and writes must wait), and a socket from
 * a Node parent (non-blocking). Each must get exactly the bytes published.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomData, sha256, startCli, tempDir, runShell } from '../helpers/cli.js';

let dir: string;
beforeEach(() => { dir = tempDir('filebus-stdout-'); });
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

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
        const bus = path.join(dir, 'bus');
        const out = path.join(dir, 'result');
        const flags = ['--filename', bus, mode, '--block-size', '65536'];
        const consumer = runShell(script, [out, ...flags]);
        if (mode === '--multicast') {
          const consumers = `${bus}.consumers`;
          for (let i = 0; i < 300 && !(fs.existsSync(consumers) && fs.readdirSync(consumers).length > 0); i++) await new Promise((r) => setTimeout(r, 20));
        }
        const input = path.join(dir, 'input');
        fs.writeFileSync(input, data);
        const producer = await startCli([...flags, 'producer'], { stdinFile: input }).done;
        expect({ code: producer.code, stderr: producer.stderr }).toEqual({ code: 0, stderr: '' });
        expect(await consumer).toEqual({ code: 0, stderr: '' });
        if (!name.startsWith('/dev/null')) expect(sha256(fs.readFileSync(out))).toBe(sha256(data));
      }, 60_000);
    }
  }

  it('a socket from a Node parent, read slowly: exactly the input', async () => {
    const bus = path.join(dir, 'bus');
    const flags = ['--filename', bus, '--back-pressure', '--block-size', '1048576'];
    const consumer = startCli([...flags, 'consumer']);
    consumer.child.stdout!.pause();
    setTimeout(() => consumer.child.stdout!.resume(), 500);
    const input = path.join(dir, 'input');
    fs.writeFileSync(input, data);
    const producer = await startCli([...flags, 'producer'], { stdinFile: input }).done;
    expect(producer.code).toBe(0);
    const done = await consumer.done;
    expect({ code: done.code, stderr: done.stderr }).toEqual({ code: 0, stderr: '' });
    expect(sha256(done.stdout)).toBe(sha256(data));
  }, 60_000);
});
