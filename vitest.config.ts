// Vitest settings for unit and in-process integration tests; the real-peer suite has vitest.e2e.config.ts.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts', 'test/contract/**/*.test.ts'],
    testTimeout: 30_000,
    pool: 'forks',
  },
});
