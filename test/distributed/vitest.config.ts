import { defineConfig } from 'vitest/config';

// The distributed suite: needs the two GlusterFS mounts of setup.sh
// (FILEBUS_MOUNT_A, FILEBUS_MOUNT_B). Run it with `npm run test:distributed`.
export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/distributed/**/*.test.ts'],
    // One scenario at a time: they share the volume and time their polls.
    pool: 'forks',
    poolOptions: { forks: { singleFork: true } },
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 60_000,
  },
});
