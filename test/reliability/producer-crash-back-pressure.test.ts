/**
 * Producer crash, back-pressure mode: RUNS producers SIGKILLed at random instants, each
 * replaced by a new one. See producer-crash.ts for the drill and its checks.
 */
import { describe, it } from 'vitest';
import { RUNS } from '../helpers/reliability.js';
import { producerCrashDrill } from './producer-crash.js';

describe('producer crash (back-pressure)', () => {
  it(`${RUNS} producers SIGKILLed at random instants: consumers emit only whole chunks, each at most once and none lost; the next producer proceeds at once`, async () => {
    await producerCrashDrill('back-pressure');
  }, 900_000);
});
