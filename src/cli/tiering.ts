import { setFlagsFromString } from 'node:v8';

/** From this block size on, a stream's JavaScript runs too seldom to be worth optimizing early. */
const LARGE_BLOCK = 256 * 1024;
/** V8's tier-up budget (bytecode executed between profiler ticks), three times its default of 67,584. */
const LARGE_BLOCK_BUDGET = 200_000;

/**
 * With large blocks a stream runs its JavaScript about once per block,
 * and the bytes are copied by the kernel. V8 still optimizes whatever ran
 * a few thousand times, so in a one-gigabyte stream of 1 MiB blocks each
 * process spent 40-90 ms of CPU compiling code that the rest of the stream
 * barely used, on the same two CPUs that the copies need (bench case 1:
 * 0.53-0.57x cat, 0.58-0.67x with a three times larger budget, interleaved
 * runs). Small blocks keep V8's default: there the JavaScript per chunk is
 * the cost, and a later tier-up made 4 KiB multicast about 7 % slower.
 * Only the CLI does this: a library user's process is theirs to tune.
 */
export function tuneTiering(blockSize: number): void {
  if (blockSize >= LARGE_BLOCK) setFlagsFromString(`--interrupt-budget=${LARGE_BLOCK_BUDGET}`);
}
