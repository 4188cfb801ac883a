import { defineConfig } from 'vitest/config';

// One runner for the whole suite. Integration tests spawn real brokers and need more time than unit
// tests; fuzz budgets are set inside the tests (short locally, longer when CI=true).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      reporter: ['text-summary', 'text', 'json-summary'],
      reportsDirectory: 'coverage',
    },
  },
});
