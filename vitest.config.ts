import { defineConfig } from 'vitest/config';

// Unit and end-to-end tests together; benchmarks live in bench/ and never run here.
export default defineConfig({
  test: {
    include: ['server/**/*.test.ts', 'verifier/**/*.test.ts', 'clients/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
