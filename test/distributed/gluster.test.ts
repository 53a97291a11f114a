/**
 * filebus across two hosts sharing a GlusterFS volume, modelled as two FUSE
 * mounts of one volume on this machine (setup.sh): the producer writes
 * through mount A, consumers read through mount B and through A, on one
 * bus. Every case pipes random binary input through the real CLI and
 * compares what each consumer wrote with it, byte for byte.
 *
 * Run with `npm run test:distributed` (root; see run.sh), which runs the
 * suite once with the recommended mounts ("nocache") and once with
 * glusterfs's caching defaults ("caching"): every case here must pass in
 * both. Consumers run with their default flags (on GlusterFS --watch auto
 * polls every --sleep-interval) or polling every 0.05 s.
 */
import { describe, expect, it } from 'vitest';
import { describe as describeRun, mountConfig, mounts, runScenario, type ScenarioResult } from './harness.js';

const m = mounts();
const config = mountConfig();
const POLL = ['--sleep-interval', '0.05'];
const DEFAULTS: string[] = [];
const MiB = 1024 * 1024;

/** Prints the scenario's outcome (the run's output shows it) and returns it. */
function show(r: ScenarioResult): ScenarioResult {
  console.log(`[${config}] ${describeRun(r)}`);
  return r;
}

/** Every consumer got the whole stream, in order, and saw the end (exit 0). */
function expectAllExact(r: ScenarioResult): void {
  expect(r.hang).toBe(false);
  expect(r.producer.code, r.producer.stderr).toBe(0);
  for (const c of r.consumers) {
    expect(c.code, `consumer@${c.host}: ${c.stderr}`).toBe(0);
    expect(c.exact, `consumer@${c.host} [${c.flags.join(' ')}]`).toBe(true);
  }
}

/** Every byte went to exactly one consumer, each in order, and exactly one consumer took the end marker. */
function expectSharedExactlyOnce(r: ScenarioResult): void {
  expect(r.hang).toBe(false);
  expect(r.producer.code, r.producer.stderr).toBe(0);
  expect(r.unionExact).toBe(true);
  expect(r.consumers.filter((c) => c.code === 0)).toHaveLength(1);
  for (const c of r.consumers) expect(c.stderr).toBe('');
}

/** Lossy: no error, nothing stale, repeated or torn, and the newest chunk reached the consumer. */
function expectLossyClean(r: ScenarioResult): void {
  expect(r.producer.code, r.producer.stderr).toBe(0);
  for (const c of r.consumers) {
    const who = `consumer@${c.host} [${c.flags.join(' ')}]`;
    expect(c.stderr, who).toBe('');
    expect(c.garbageBytes, who).toBe(0);
    expect(c.backwardsSegments, who).toBe(0);
    expect(c.sawLast, who).toBe(true);
  }
}

describe.skipIf(!m)(`filebus across two GlusterFS mounts (${config}: ${process.env.FILEBUS_GLUSTER_ACTIVE_MOUNT_OPTIONS_B ?? '?'})`, () => {
  describe('multicast', () => {
    it('consumers on B (default flags, polling, forced events) and on A each get the whole stream and exit 0', async () => {
      expectAllExact(show(await runScenario({
        timeoutMs: 30_000, mode: 'multicast', size: 4 * MiB,
        consumers: [{ host: 'B', flags: DEFAULTS }, { host: 'B', flags: POLL }, { host: 'B', flags: ['--watch', 'events'] }, { host: 'A', flags: DEFAULTS }],
      })));
    });

    it('with a window of 4 chunks the producer follows the cursors consumers on B rewrite', async () => {
      expectAllExact(show(await runScenario({
        timeoutMs: 30_000, mode: 'multicast', size: 2 * MiB, producerFlags: ['--window', '4'],
        consumers: [{ host: 'B', flags: DEFAULTS }, { host: 'B', flags: POLL }, { host: 'A', flags: DEFAULTS }],
      })));
    });
  });

  describe('back-pressure', () => {
    it('one consumer on B gets the whole stream and exits 0', async () => {
      expectAllExact(show(await runScenario({ timeoutMs: 30_000, mode: 'back-pressure', size: 2 * MiB, consumers: [{ host: 'B', flags: DEFAULTS }] })));
    });

    it('consumers on B and on A share the stream: every byte exactly once, in order, one takes the end', async () => {
      expectSharedExactlyOnce(show(await runScenario({
        timeoutMs: 30_000, mode: 'back-pressure', size: 2 * MiB, consumers: [{ host: 'B', flags: POLL }, { host: 'A', flags: DEFAULTS }],
      })));
    });

    it('two consumers on B share the stream: every byte exactly once', async () => {
      expectSharedExactlyOnce(show(await runScenario({
        timeoutMs: 30_000, mode: 'back-pressure', size: 2 * MiB, consumers: [{ host: 'B', flags: POLL }, { host: 'B', flags: DEFAULTS }],
      })));
    });
  });

  describe('lossy', () => {
    it('consumers on B and A follow a producer publishing every 150 ms: nothing stale, the last chunk, most chunks', async () => {
      const r = show(await runScenario({
        timeoutMs: 30_000, mode: 'lossy', size: 2 * MiB, throttleMs: 150,
        consumers: [{ host: 'B', flags: POLL }, { host: 'B', flags: DEFAULTS }, { host: 'A', flags: DEFAULTS }],
      }));
      expectLossyClean(r);
      // Polling every 50-100 ms catches nearly every 150 ms chunk; a pipe
      // read can split a block into two chunks, one of them short-lived.
      for (const c of r.consumers) expect(c.bytes, `consumer@${c.host} [${c.flags.join(' ')}]`).toBeGreaterThanOrEqual(0.75 * 2 * MiB);
    });

    it('consumers on B and A survive a producer replacing FILE as fast as it can (4 KiB chunks): nothing stale, repeated or torn, the last chunk', async () => {
      // 512 chunks, each a round trip to the brick and back: 20-24 s on this
      // machine without caching, quiet. The bound is for hangs, not speed.
      expectLossyClean(show(await runScenario({
        timeoutMs: 90_000, mode: 'lossy', size: 2 * MiB, blockSize: 4096,
        consumers: [{ host: 'B', flags: POLL }, { host: 'B', flags: DEFAULTS }, { host: 'A', flags: DEFAULTS }],
      })));
    });
  });

  describe('--lock mkdir', () => {
    it('multicast: consumers on B and A get the whole stream and exit 0', async () => {
      expectAllExact(show(await runScenario({
        timeoutMs: 30_000, mode: 'multicast', size: 2 * MiB, busFlags: ['--lock', 'mkdir'],
        consumers: [{ host: 'B', flags: DEFAULTS }, { host: 'A', flags: DEFAULTS }],
      })));
    });

    it('back-pressure: consumers on B and A share the stream, every byte exactly once', async () => {
      expectSharedExactlyOnce(show(await runScenario({
        timeoutMs: 30_000, mode: 'back-pressure', size: 2 * MiB, busFlags: ['--lock', 'mkdir'],
        consumers: [{ host: 'B', flags: POLL }, { host: 'A', flags: DEFAULTS }],
      })));
    });

    it('lossy: consumers on B and A, paced: nothing stale, the last chunk', async () => {
      expectLossyClean(show(await runScenario({
        timeoutMs: 30_000, mode: 'lossy', size: MiB, throttleMs: 150, busFlags: ['--lock', 'mkdir'],
        consumers: [{ host: 'B', flags: DEFAULTS }, { host: 'A', flags: DEFAULTS }],
      })));
    });
  });
});
