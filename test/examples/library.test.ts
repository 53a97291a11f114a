/**
 * examples/library.ts, run as its header says (npx tsx examples/library.ts):
 * it imports 'filebus' by name, so this also checks the package resolves
 * itself through its exports map.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { startProcess } from '../helpers/procs.js';
import { within } from '../helpers/wait.js';
import { useBusDir } from '../helpers/bus-dir.js';

const fixture = useBusDir('filebus-example-lib-');

describe('examples/library.ts', () => {
  it('carries its messages from producer to consumer and leaves no temporary directory behind', async () => {
    const tmp = fixture.dir;
    const proc = startProcess(path.join(ROOT, 'node_modules', '.bin', 'tsx'), ['examples/library.ts'], { cwd: ROOT, env: { TMPDIR: tmp }, stdin: 'ignore' });
    const exit = await within(proc.done, 60_000, 'examples/library.ts to finish');
    expect(exit, proc.stderr()).toEqual({ code: 0, signal: null });
    expect(proc.stdout().toString()).toBe(['message 1', 'message 2', 'message 3', 'message 4', 'message 5', ''].join('\n'));
    // tsx keeps its compile cache there (tsx-UID); anything else is the example's.
    expect(fs.readdirSync(tmp).filter((name) => !/^tsx-\d+$/.test(name))).toEqual([]);
  });
});
