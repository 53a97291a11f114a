/**
 * examples/work-queue: back-pressure mode hands each job to exactly one of
 * three workers, and all three workers end (one end marker each).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useBusDir } from '../helpers/bus-dir.js';
import { runExample, transcript } from '../helpers/examples.js';

const fixture = useBusDir('filebus-example-queue-');

function lines(file: string): string[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter((line) => line !== '');
}

describe('examples/work-queue', () => {
  it('every job is done exactly once, and the jobs are spread over more than one worker', async () => {
    const out = fixture.dir;
    const jobs = 90;
    const run = await runExample('work-queue/run.sh', [out], { JOBS: String(jobs) });
    expect(run.code, transcript(run)).toBe(0);

    const sent = lines(path.join(out, 'jobs.txt'));
    expect(sent).toHaveLength(jobs);
    const perWorker = [1, 2, 3].map((n) => lines(path.join(out, `worker-${n}.log`)));
    const done = perWorker.flat();
    // Exactly once: the multiset of jobs done is the multiset of jobs sent.
    expect([...done].sort()).toEqual([...sent].sort());
    expect(perWorker.filter((jobsOfWorker) => jobsOfWorker.length > 0).length, `jobs per worker: ${perWorker.map((w) => w.length).join(', ')}`).toBeGreaterThan(1);
    expect(run.stdout).toContain(`${jobs} distinct jobs done, ${jobs} in all, ${jobs} sent`);
  });
});
