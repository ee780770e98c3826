import { defineConfig } from "vitest/config";

// Two cores on CI: test files run one or two at a time, each with its own `tern serve`.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    maxWorkers: 2,
  },
});
