/**
 * Concurrent crash drill, back-pressure mode: three producers at once, killed at the
 * instants between the steps of a publish (strace-injected SIGKILL), at
 * random instants, paused, or given ENOSPC; then three last producers end
 * together. See concurrent.ts for the run and its checks.
 */
import { describe, it } from 'vitest';
import { CONCURRENT_RUNS, concurrentDrill } from './concurrent-drill.js';

describe('concurrent producers crash drill (back-pressure)', () => {
  it(`${CONCURRENT_RUNS} runs of 3 producers at once with injected kills, stops and ENOSPC, and 3 producers ending together`, async () => {
    await concurrentDrill('back-pressure');
  }, 900_000);
});
