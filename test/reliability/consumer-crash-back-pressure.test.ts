/**
 * Consumer crash, back-pressure mode: RUNS consumers SIGKILLed at random instants
 * while one producer streams. See consumer-crash.ts for the drill and its checks.
 */
import { describe, it } from 'vitest';
import { RUNS } from '../helpers/reliability.js';
import { consumerCrashDrill } from './consumer-crash.js';

describe('consumer crash (back-pressure)', () => {
  it(`${RUNS} consumers SIGKILLed at random instants: no chunk lost, the only repeat the documented one`, async () => {
    await consumerCrashDrill('back-pressure');
  }, 900_000);
});
