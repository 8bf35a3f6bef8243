import { defineConfig } from 'vitest/config';

// Unit and end-to-end tests together. Benchmarks live in bench/ and never run here; the load
// generator's own correctness tests (bench/**/*.test.ts: its HTTP/2 client and HPACK) do.
export default defineConfig({
  test: {
    include: ['server/**/*.test.ts', 'verifier/**/*.test.ts', 'clients/**/*.test.ts', 'test/**/*.test.ts', 'bench/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
