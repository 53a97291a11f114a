/**
 * examples/tee-to-two-hosts: one tar stream, two receivers; the script
 * freezes receiver B, lets the producer stall a window ahead of it, then
 * SIGKILLs it mid-stream. Receiver A must still extract the whole tree and
 * the producer must exit 0.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useBusDir } from '../helpers/bus-dir.js';
import { listTree } from '../helpers/bus-layout.js';
import { runExample, transcript } from '../helpers/examples.js';

const fixture = useBusDir('filebus-example-tee-');

describe('examples/tee-to-two-hosts', () => {
  it('a receiver SIGKILLed mid-stream does not stop the other, which gets the tree byte for byte', async () => {
    const out = fixture.dir;
    const run = await runExample('tee-to-two-hosts/run.sh', [out]);
    expect(run.code, transcript(run)).toBe(0);

    // The kill came mid-stream: the producer was running and A had only part of the tree.
    const died = /^host-b dies with host-a holding (\d+) of (\d+) files; producer still running: (\w+)$/m.exec(run.stdout);
    expect(died, transcript(run)).not.toBeNull();
    const [, held, total, running] = died!;
    expect(running).toBe('yes');
    expect(Number(held)).toBeLessThan(Number(total));
    expect(run.stdout).toContain('host-b receiver exit status 137');
    expect(run.stdout).toContain('producer exit status 0');

    const source = path.join(out, 'source');
    const hostA = path.join(out, 'host-a');
    const files = listTree(source).filter((name) => !name.endsWith('/'));
    expect(files).toHaveLength(Number(total));
    expect(listTree(hostA)).toEqual(listTree(source));
    for (const name of files) {
      expect(fs.readFileSync(path.join(hostA, name)).equals(fs.readFileSync(path.join(source, name))), `host-a/${name} differs from source/${name}`).toBe(true);
    }
    // B was cut off: it does not hold the whole tree.
    expect(listTree(path.join(out, 'host-b')).filter((name) => !name.endsWith('/')).length).toBeLessThan(files.length);
  }, 150_000);
});
