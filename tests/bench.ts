/**
 * `npm run bench`: the benchmarks, each figure on its own line as `name: value`.
 *
 * Sections (all by default; `npm run bench -- webhook backfill` picks):
 * - webhook (tests/bench_webhook.ts), live (tests/bench_live.ts), backfill (tests/bench_backfill.ts),
 *   validator (tests/bench_validator.ts).
 * Not by default: export (tests/bench_export.ts) and validator-scale
 * (tests/bench_validator_scale.ts).
 *
 * Each section checks the work it times (the webhook's rows against the raw upsert's,
 * tests/bench_checks.ts): a bench whose work was not done fails rather than record a goal.
 *
 * @module
 */

import { up } from "../local-stack/stack.ts";
import { benchBackfill } from "./bench_backfill.ts";
import { benchExport } from "./bench_export.ts";
import { benchLive } from "./bench_live.ts";
import { type Figure, Goals } from "./bench_goals.ts";
import { benchValidator } from "./bench_validator.ts";
import { benchValidatorScale } from "./bench_validator_scale.ts";
import { watchStalls } from "./bench_stall_watch.ts";
import { webhookSection } from "./bench_webhook.ts";
import { connectDb } from "./stack_clients.ts";

const figure: Figure = (name, value, digits = 1) => {
  console.log(`${name}: ${value.toFixed(digits)}`);
};

/** The sections `npm run bench` runs when none is named. */
const DEFAULT_SECTIONS = ["webhook", "live", "backfill", "validator"];
/** Every section `npm run bench --` may name. */
const SECTIONS = [...DEFAULT_SECTIONS, "export", "validator-scale"];

if (import.meta.main) {
  const sections = Deno.args.length > 0 ? Deno.args : DEFAULT_SECTIONS;
  // A name misspelt ran nothing and passed: refused, before the stack is touched.
  const unknown = sections.filter((name) => !SECTIONS.includes(name));
  if (unknown.length > 0) {
    console.error(
      `bench: no section ${unknown.map((n) => JSON.stringify(n)).join(", ")}; ` +
        `the sections are ${SECTIONS.join(", ")}`,
    );
    Deno.exit(2);
  }
  await up();
  const sql = connectDb();
  const goals = new Goals();
  // Any backend that stands still for 5 s or more, named as it happens (bench_stall_watch.ts).
  const stalls = watchStalls(connectDb());
  try {
    if (sections.includes("webhook")) await webhookSection(sql, figure, goals);
    if (sections.includes("live")) await benchLive(sql, figure, goals);
    if (sections.includes("backfill")) await benchBackfill(sql, figure, goals);
    if (sections.includes("validator")) await benchValidator(sql, figure, goals);
    // Not by default: at its scale (100×) it loads 4.8 million items.
    if (sections.includes("export")) await benchExport(sql, figure, goals);
    // Not by default: it adds a million rows to two tables (rolled back).
    if (sections.includes("validator-scale")) await benchValidatorScale(sql, figure, goals);
  } finally {
    figure("stall_watch_episodes", await stalls.stop(), 0);
    await sql.end();
  }
  console.log(`\nEach path against its raw limit, same run:\n${goals.table()}`);
}
