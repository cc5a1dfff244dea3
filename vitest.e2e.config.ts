// Vitest settings for the real-peer e2e suite (test/e2e): long timeouts, one file at a time.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/e2e/**/*.e2e.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
    fileParallelism: false,
    pool: 'forks',
    reporters: ['default'],
  },
});
