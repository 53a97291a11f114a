import { defineConfig } from 'vitest/config';

// The fault suite (crash drills, disk full, load, fuzz): `npm run test:reliability`.
// It runs apart from `npm test` because its load would starve the timing-
// sensitive lossy tests there (a lossy consumer descheduled longer than the
// gap between two chunks rightly misses one).
export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/reliability/**/*.test.ts'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 600_000,
    hookTimeout: 60_000,
  },
});
