import assert from "node:assert/strict";
import {
  IMPORT_WORKER_SETTINGS,
  integer,
  readSettings,
  SettingsError,
  text,
  VALIDATOR_SETTINGS,
} from "./settings.ts";

const platform = {
  SUPABASE_DB_URL: "postgresql://postgres:hunter2@db:5432/postgres",
  SUPABASE_URL: "https://ref.supabase.co",
  SUPABASE_SERVICE_ROLE_KEY: "service-key",
};
const envOf = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("unset settings take their defaults; set ones are parsed", () => {
  const settings = readSettings(
    envOf({ ...platform, IMPORT_WORKER_MAX_CONCURRENT: " 4 " }),
    IMPORT_WORKER_SETTINGS,
  );
  assert.equal(settings.cpuBudgetMs, 1_100);
  assert.equal(settings.wallBudgetMs, 60_000);
  assert.equal(settings.maxConcurrent, 4);
  assert.equal(settings.supabaseUrl, "https://ref.supabase.co");
});

Deno.test("every bad setting is named at once, with what it holds and what it should", () => {
  const bad = envOf({
    ...platform,
    VALIDATOR_CPU_BUDGET_MS: "12OO",
    VALIDATOR_SETTLE_MS: "-5",
    VALIDATOR_WALL_BUDGET_MS: "1.5",
  });
  assert.throws(() => readSettings(bad, VALIDATOR_SETTINGS), (error: unknown) => {
    assert.ok(error instanceof SettingsError);
    assert.deepEqual(error.problems, [
      'VALIDATOR_CPU_BUDGET_MS is "12OO"; it must be a whole number from 50 to 1900',
      'VALIDATOR_WALL_BUDGET_MS is "1.5"; it must be a whole number from 1000 to 400000',
      'VALIDATOR_SETTLE_MS is "-5"; it must be a whole number from 0 to 60000',
    ]);
    return true;
  });
});

Deno.test("a missing required setting is named; a secret's value is never shown", () => {
  const specs = {
    key: text("SOME_KEY", "the key", true),
    budget: integer("SOME_BUDGET", "a budget", 5, 1, 9),
  };
  assert.throws(() => readSettings(envOf({}), specs), /SOME_KEY is not set \(the key\)/);
  const secret = {
    ...specs,
    key: {
      ...specs.key,
      parse: () => {
        throw new Error("a whsec_ secret");
      },
    },
  };
  assert.throws(
    () => readSettings(envOf({ SOME_KEY: "hunter2" }), secret),
    (error: unknown) => {
      assert.ok(error instanceof SettingsError);
      assert.equal(
        error.problems[0],
        "SOME_KEY is (a secret, not shown); it must be a whsec_ secret",
      );
      assert.ok(!error.message.includes("hunter2"));
      return true;
    },
  );
});
