/**
 * Consumer crash, multicast mode: RUNS consumers SIGKILLed at random instants
 * while one producer streams. See consumer-crash.ts for the drill and its checks.
 */
import { describe, it } from 'vitest';
import { RUNS } from '../helpers/reliability.js';
import { consumerCrashDrill } from './consumer-crash.js';

describe('consumer crash (multicast)', () => {
  it(`${RUNS} consumers SIGKILLed at random instants: no chunk lost, the only repeat the documented one`, async () => {
    await consumerCrashDrill('multicast');
  }, 900_000);
});
