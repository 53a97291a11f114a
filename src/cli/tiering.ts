import { setFlagsFromString } from 'node:v8';

/** From this block size on, a stream's JavaScript runs too seldom to be worth optimizing early. */
const LARGE_BLOCK = 256 * 1024;
/** V8's tier-up budget (bytecode executed between profiler ticks), three times its default of 67,584. */
const LARGE_BLOCK_BUDGET = 200_000;

/**
 * With large blocks a stream runs its JavaScript about once per block,
 * and the bytes are copied by the kernel. V8 still optimizes whatever ran
 * a few thousand times, so in a long stream of 1 MiB blocks each process
 * spent CPU compiling code that the rest of the stream barely used, on
 * the CPUs that the copies need. Small blocks keep V8's default: there the
 * JavaScript per chunk is the cost, and a later tier-up made small-chunk
 * multicast slower (docs/performance.md, "Start-up").
 * Only the CLI does this: a library user's process is theirs to tune.
 */
export function tuneTiering(blockSize: number): void {
  if (blockSize >= LARGE_BLOCK) setFlagsFromString(`--interrupt-budget=${LARGE_BLOCK_BUDGET}`);
}
