/**
 * examples/archive-and-replay: a multicast bus with --retain all is a live
 * stream, an archive that cat reassembles, and a replay for a late consumer,
 * all byte-identical to the input.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useBusDir } from '../helpers/bus-dir.js';
import { runExample, transcript } from '../helpers/examples.js';

const fixture = useBusDir('filebus-example-archive-');

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

describe('examples/archive-and-replay', () => {
  it('live consumer, cat of the segments and a late --from earliest consumer all equal the input', async () => {
    const out = fixture.dir;
    const run = await runExample('archive-and-replay/run.sh', [out]);
    expect(run.code, transcript(run)).toBe(0);

    const input = fs.readFileSync(path.join(out, 'input'));
    expect(input.length).toBe(5_000_000);
    const expected = sha256(input);
    // The archive as the test reads it, not only as the script cat'ed it.
    const segmentsDir = path.join(out, 'bus.segments');
    const segments = fs.readdirSync(segmentsDir).sort();
    expect(segments.length).toBeGreaterThan(1);
    const archive = Buffer.concat(segments.map((name) => fs.readFileSync(path.join(segmentsDir, name))));
    expect({
      live: sha256(fs.readFileSync(path.join(out, 'live'))),
      catByScript: sha256(fs.readFileSync(path.join(out, 'archive'))),
      catByTest: sha256(archive),
      lateConsumer: sha256(fs.readFileSync(path.join(out, 'replay'))),
    }).toEqual({ live: expected, catByScript: expected, catByTest: expected, lateConsumer: expected });
  });

  it('run without an output directory, it cleans up after itself', async () => {
    const tmp = fixture.dir;
    const run = await runExample('archive-and-replay/run.sh', [], { TMPDIR: tmp });
    expect(run.code, transcript(run)).toBe(0);
    const hashes = [...run.stdout.matchAll(/^([0-9a-f]{64}) {2}(input|live|archive|replay)$/gm)].map((m) => m[1]);
    expect(hashes).toHaveLength(4);
    expect(new Set(hashes).size).toBe(1);
    expect(fs.readdirSync(tmp)).toEqual([]);
  });
});
