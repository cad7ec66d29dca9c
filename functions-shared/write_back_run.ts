/**
 * The `write-back` Edge Function's work (docs/interfaces.md, "write-back"): claims the
 * due rows of `sync.write_backs` (a lease each; the oldest edit of a row first) and
 * writes each to its DynamoDB item (write_back_update.ts):
 * - the item holds the edit already (an earlier attempt wrote it): `applied`;
 * - the update succeeds: `applied`; the change comes back through the stream and the one
 *   merge, whose writes never fire the trigger, so nothing loops;
 * - the item changed in between (the mapped values differ, or ConditionalCheckFailed):
 *   `conflict`, with the source's values, and the row restored from a consistent read
 *   through the one merge (validator_repair.ts's repairKeys);
 * - the edit cannot be written (a key attribute, an undocumented catch-all key, a value
 *   DynamoDB cannot hold): `failed` at once, the row restored from the source;
 * - throttling, 5xx, no writer credentials, the item gone: retried after a backoff
 *   (`sync.finish_write_back`), `failed` after `write_back_max_attempts`, the row then
 *   restored from the source when it can be read (so the row never shows an edit the
 *   source does not hold; the edit stays in `after_values`).
 * Every detail names the table, the key and the cause; no secret is ever part of one.
 *
 * A run stops claiming at its wall budget or at its CPU allowance (each edit charged
 * `EDIT_CPU_MS` to the isolate's meter: a bulk edit of 3,000 rows had isolate after
 * isolate killed at the 2,000 ms hard limit), and says whether write-backs may be left
 * (`more`), which write_back_requests.ts hands on to a new request.
 *
 * @module
 */

import type { CpuMeter } from "./cpu_meter.ts";
import { FirstLines } from "./log_window.ts";
import { UpdateItemCommand } from "./dynamo_commands.ts";
import type { DynamoClient } from "./dynamo_http.ts";
import type postgres from "postgres";
import { encodeJson } from "./dynamo_encoder.ts";
import { parseJsonExact } from "./dynamo_numbers.ts";
import { byTargetTable, type TableSpec } from "./table_registry.ts";
import {
  causeOf,
  newerObservation,
  readItem,
  restore,
  type Restored,
  sourceValues,
} from "./write_back_source.ts";
import { describeEdit, itemKeyOf, planWriteBack, type WriteBackEdit } from "./write_back_update.ts";

/** What the function needs, given by its entry point (or a test). */
export interface WriteBackDeps {
  sql: postgres.Sql;
  serviceKeys: readonly string[];
  /** The reader's client of a region (GetItem and Query, consistent). */
  reader: (region: string) => DynamoClient;
  /** The writer's client (UpdateItem only), or why there is none (no credentials). */
  writer: (region: string) => DynamoClient | string;
  /** This isolate's name in leases. */
  worker: string;
  /** Wall time after which no further batch is claimed (ms). */
  wallBudgetMs: number;
  /** The isolate's CPU meter, created at its cold start (cpu_meter.ts). */
  cpu: CpuMeter;
  /** The CPU, by `cpu`, after which the run starts no further edit (ms). */
  runCpuMs: number;
  /** Write-backs claimed at once (10). */
  batch?: number;
  log?: (line: string) => void;
}

/** The outcome of one run: how many ended how, and whether some may be left. */
export interface WriteBackReport {
  applied: number;
  conflict: number;
  failed: number;
  retrying: number;
  /**
   * Set when a budget stopped the run after a claim that found work, so that more may be
   * due: the request hands them on.
   */
  more?: true;
}

/**
 * The CPU an edit is charged: two DynamoDB requests through the SDK (signed) and three or
 * four statements. Measured on the local stack, by the gateway's count of the isolate's
 * process: 4.0-4.9 ms an edit in runs of 130-140 edits, the first edit of an isolate
 * 60 ms (compiling what it runs). Charged at twice the steady cost, so that a run's
 * allowance by this count is more than it uses, however busy the machine.
 */
export const EDIT_CPU_MS = 8;

interface Claimed {
  id: string;
  /** "pending" when claimed; "failed" when its attempts are spent or its restore is due. */
  status: string;
  detail: string | null;
  target_table: string;
  row_key: string;
  range_key: string | null;
  columns: string[];
  before_values: string;
  after_values: string;
}

/** Claims and writes due write-backs until none is due or a budget is spent. */
export async function runWriteBacks(given: WriteBackDeps): Promise<WriteBackReport> {
  // Leases are the run's own, not the isolate's: two runs of one isolate must not pass
  // each other's lease checks.
  const deps = { ...given, worker: `${given.worker}/${crypto.randomUUID().slice(0, 8)}` };
  const report: WriteBackReport = { applied: 0, conflict: 0, failed: 0, retrying: 0 };
  const started = performance.now();
  // What the isolate's meter has counted since the run started, its own edits and those
  // of a run beside it (write_back_requests.ts admits two): once the runtime retires the
  // isolate at its soft limit, its runs add about one allowance more, whatever the
  // isolate used before.
  const cpuAtStart = deps.cpu.usedMs();
  const budgetLeft = () =>
    performance.now() - started < deps.wallBudgetMs &&
    deps.cpu.usedMs() - cpuAtStart + EDIT_CPU_MS <= deps.runCpuMs;
  const batch = deps.batch ?? 10;
  // Claimed, not yet tried: released if the run stops (by a budget, or an error).
  const untried = new Set<string>();
  let lastClaimed = 0;
  // The first few edits not applied (conflicts, failures, retries) get a line each; the
  // rest count in the run's totals: a bulk edit applies hundreds a run, or fails or
  // retries them all while DynamoDB or the writer's key is down, and a hosted function
  // keeps 100 log events in 10 s (https://supabase.com/docs/guides/functions/limits).
  // Each edit is in sync.write_backs with its detail.
  const problems = new FirstLines(PROBLEM_LINES_PER_RUN, deps.log);
  const logEnd = (status: string | null, line: string) => {
    if (status !== "applied") problems.line(line);
  };
  try {
    while (budgetLeft()) {
      const claimed = await deps.sql<Claimed[]>`
        select id::text, status, detail, target_table, row_key::text, range_key::text, columns,
               before_values::text, after_values::text
        from sync.claim_write_backs(${deps.worker}, ${batch})`;
      lastClaimed = claimed.length;
      if (claimed.length === 0) break;
      // Spent ones first (failed by the claim, at most a batch): their rows go back to the
      // source's state whatever the budget, and before anything else can stop the run.
      const spentRows = claimed.filter(restoreDue);
      const pending = claimed.filter((row) => !restoreDue(row));
      for (const row of pending) untried.add(row.id);
      for (const row of [...spentRows, ...pending]) {
        // The budgets are checked before each edit: one not reached goes back untried.
        if (!restoreDue(row) && !budgetLeft()) continue;
        untried.delete(row.id);
        const { status, line } = !byTargetTable(row.target_table)
          ? await unmapped(deps, row)
          : restoreDue(row)
          ? await spent(deps, row)
          : await writeOne(deps, row);
        deps.cpu.charge(EDIT_CPU_MS);
        logEnd(status, line);
        if (status === "applied") report.applied++;
        else if (status === "conflict") report.conflict++;
        else if (status === "failed") report.failed++;
        else if (status === "pending") report.retrying++;
      }
      await release(deps, untried);
    }
  } finally {
    // A run that stops on an error leaves no lease behind for 2 minutes either.
    if (untried.size > 0) await release(deps, untried).catch(() => {});
    // Also when the run stops on an error: what it did before is said.
    const unlogged = problems.unlogged;
    if (report.applied + report.conflict + report.failed + report.retrying > 0 || unlogged > 0) {
      deps.log?.(
        `write-back run: ${report.applied} applied, ${report.conflict} conflicts, ` +
          `${report.failed} failed, ${report.retrying} to retry` +
          (unlogged > 0
            ? ` (${unlogged} not logged one by one: sync.write_backs holds each edit's detail)`
            : ""),
      );
    }
  }
  // A budget stopped it after a claim that found work: more may be due (edits it gave
  // back, later edits of the rows it wrote, more spent ones). A successor that finds
  // nothing costs one claim.
  if (!budgetLeft() && lastClaimed > 0) report.more = true;
  return report;
}

/**
 * A write-back of a table this version of the function does not map (a migration pushed
 * before the functions were deployed): it fails, saying so, and the run goes on with the
 * others. Its row keeps the edit, which DynamoDB does not have; nothing here can read the
 * source's state of a table it does not know to put the row back.
 */
async function unmapped(deps: WriteBackDeps, row: Claimed): Promise<Ended> {
  const detail = `${row.target_table} ${row.row_key}: this version of the write-back ` +
    `function maps no table ${row.target_table} (its migration is newer than the ` +
    "functions deployed): deploy the functions, then make the edit again; the row keeps " +
    "the edit, which DynamoDB does not have";
  if (restoreDue(row)) {
    // Its detail (why it ended) kept, this said after it.
    await deps.sql`select sync.end_write_back_restore(${row.id}::bigint, ${deps.worker},
                                                      ${row.status}, ${null}, ${`; ${detail}`})`;
    return { status: row.status, line: `write-back ${row.id}: ${row.status}: ${detail}` };
  }
  const [ended] = await deps.sql<{ status: string | null }[]>`
    select sync.finish_write_back(${row.id}::bigint, ${deps.worker}, ${"failed"},
      ${detail}, ${null}::text::jsonb) as status`;
  // Null: the lease was another's by then (this run ran past it), which ends it.
  return { status: ended?.status ?? null, line: `write-back ${row.id}: failed: ${detail}` };
}

/** A claimed write-back that has ended (failed, or a conflict), its restore due. */
const restoreDue = (row: Claimed) => row.status === "failed" || row.status === "conflict";

/** Gives the claimed write-backs back untried (their attempt not counted). */
async function release(deps: WriteBackDeps, ids: Set<string>): Promise<void> {
  for (const id of [...ids]) {
    await deps.sql`select sync.release_write_back(${id}::bigint, ${deps.worker})`;
    ids.delete(id);
  }
}

/** How many edits of a run not applied get a line each; the rest count in its totals. */
export const PROBLEM_LINES_PER_RUN = 3;

/** How an edit ended, and its line for the log. */
interface Ended {
  status: string | null;
  line: string;
}

function editOf(row: Claimed): WriteBackEdit {
  return {
    id: Number(row.id),
    rowKey: JSON.parse(row.row_key),
    columns: row.columns,
    before: parseJsonExact(row.before_values) as Record<string, unknown>,
    after: parseJsonExact(row.after_values) as Record<string, unknown>,
    rangeKey: row.range_key,
  };
}

type Outcome = {
  status: "applied" | "conflict" | "failed" | "pending";
  detail: string;
  source?: unknown;
  /** Applied, but the row shows the values otherwise than the source: put back from it. */
  restoreRow?: true;
};

async function writeOne(deps: WriteBackDeps, row: Claimed): Promise<Ended> {
  const spec = byTargetTable(row.target_table)!;
  const edit = editOf(row);
  let outcome: Outcome | "taken";
  try {
    outcome = await attempt(deps, spec, edit, row.id);
  } catch (error) {
    // DynamoDB refuses the request itself (a set with members alike, an item past 400 KB):
    // no retry can cure that. Anything else (throttling, 5xx, the network) may pass later.
    const refused = (error as { name?: string }).name === "ValidationException";
    outcome = {
      status: refused ? "failed" : "pending",
      detail: `${describeEdit(spec, edit)}: ${causeOf(error)}`,
    };
  }
  if (outcome === "taken") {
    return {
      status: null,
      line: `write-back ${row.id}: ${
        describeEdit(spec, edit)
      }: left to the run that took it over (this one ran past its lease), unwritten`,
    };
  }
  let detail = outcome.detail;
  const source = outcome.source === undefined ? null : encodeJson(outcome.source);
  if (outcome.restoreRow) detail += await putBackSourceForm(deps, spec, edit);
  if (outcome.status === "conflict" || outcome.status === "failed") {
    const restored = await restore(deps, spec, edit);
    detail += restored.text;
    if (!restored.done) {
      // Ended with its restore due: the next run's claim puts the row back.
      await deps.sql`select sync.leave_write_back_restore(${row.id}::bigint, ${deps.worker},
        ${outcome.status}, ${detail}, '', ${source}::text::jsonb)`;
      return { status: outcome.status, line: `write-back ${row.id}: ${outcome.status}: ${detail}` };
    }
  }
  const [ended] = await deps.sql<{ status: string | null }[]>`
    select sync.finish_write_back(${row.id}::bigint, ${deps.worker}, ${outcome.status},
      ${detail}, ${source}::text::jsonb) as status`;
  if (ended.status === "failed" && outcome.status === "pending") {
    // The last attempt, its outcome unknown (a timeout, 5xx past the SDK's retries, the
    // network): the update may have been written, its answer lost. Then it is applied.
    const held = await endIfHeld(
      deps,
      row.id,
      spec,
      edit,
      "the last attempt, whose answer was lost",
    );
    if (held) return held;
    // Else the row goes back to the source's state too. The end kept the lease with the
    // restore due: a run stopped before the next statement leaves it to the next run's
    // claim, and so does a restore that failed.
    const restored = await restore(deps, spec, edit);
    await endRestore(deps, row.id, "failed", null, restored);
    detail += restored.text;
  }
  return { status: ended.status, line: `write-back ${row.id}: ${ended.status}: ${detail}` };
}

/**
 * Ends the restore of write-back `id` (its status kept, its detail `detail` or the one it
 * has, then the restore's text), or leaves it due when it failed.
 */
async function endRestore(
  deps: WriteBackDeps,
  id: string,
  status: "applied" | "conflict" | "failed",
  detail: string | null,
  restored: Restored,
): Promise<void> {
  if (restored.done || status === "applied") {
    await deps.sql`select sync.end_write_back_restore(${id}::bigint, ${deps.worker}, ${status},
                                                      ${detail}, ${restored.text})`;
  } else {
    await deps.sql`select sync.leave_write_back_restore(${id}::bigint, ${deps.worker}, ${status},
                                                        ${detail}, ${restored.text})`;
  }
}

/**
 * A write-back the claim failed, its attempts spent by runs that never answered, or one
 * whose restore is still due (a stopped run, or a restore that failed: a conflict keeps
 * its status): its row goes back to the source's state, and its detail names the table
 * and the key. The claim kept the lease with the restore due until
 * `sync.end_write_back_restore` here (or `sync.leave_write_back_restore`, for another try).
 */
async function spent(deps: WriteBackDeps, row: Claimed): Promise<Ended> {
  const spec = byTargetTable(row.target_table)!;
  const edit = editOf(row);
  const status = row.status === "conflict" ? "conflict" : "failed";
  // The run that never answered may have written it: then it is applied, not failed.
  if (status === "failed") {
    const held = await endIfHeld(deps, row.id, spec, edit, "a run that ended without an answer");
    if (held) return held;
  }
  // One whose restore a stopped run left due has its edit named in its detail already.
  const where = describeEdit(spec, edit);
  const named = row.detail?.startsWith(where) ? row.detail : `${where}: ${row.detail}`;
  const restored = await restore(deps, spec, edit);
  await endRestore(deps, row.id, status, named, restored);
  return { status, line: `write-back ${row.id}: ${status}: ${named}${restored.text}` };
}

/**
 * Ends write-back `id` applied when its item holds the edit now, by a consistent read:
 * an attempt whose answer was lost (`writtenBy`) may have written it. The row is put back
 * as the source shows the values when it shows them otherwise (a set's members in
 * another order). Undefined when the item does not hold it, or cannot be read.
 */
async function endIfHeld(
  deps: WriteBackDeps,
  id: string,
  spec: TableSpec,
  edit: WriteBackEdit,
  writtenBy: string,
): Promise<Ended | undefined> {
  const key = itemKeyOf(spec, edit);
  if (typeof key === "string") return undefined;
  const item = await readItem(deps, spec, key).catch(() => undefined);
  if (!item) return undefined;
  const plan = deps.cpu.measure(() => planWriteBack(spec, edit, key, item));
  if (plan.kind !== "noop") return undefined;
  const detail = `${describeEdit(spec, edit)}: the item holds the edit (written by ${writtenBy})` +
    (plan.rowDiffers ? await putBackSourceForm(deps, spec, edit) : "");
  await endRestore(deps, id, "applied", detail, { done: true, text: "" });
  return { status: "applied", line: `write-back ${id}: applied: ${detail}` };
}

/**
 * Puts back, as the source shows them, the values of an applied edit that the item held
 * already in a form equal to DynamoDB (no stream record comes of an update that changes
 * nothing, so only this makes the row the source's again); the text for its detail. A
 * failed restore is not tried again (the edit is applied): the table's next validation
 * finds the row and repairs it, and the detail says so.
 */
async function putBackSourceForm(
  deps: WriteBackDeps,
  spec: TableSpec,
  edit: WriteBackEdit,
): Promise<string> {
  const restored = await restore(deps, spec, edit);
  if (restored.done) return restored.text;
  return `; the row still shows the values as edited: putting them back as the source shows ` +
    `them failed (${restored.cause ?? "see the log"}); the table's next validation repairs it`;
}

/**
 * How long the UpdateItem may take, its SDK retries included: less than the lease that
 * `sync.hold_write_back` renews (2 minutes) just before it, so that it has ended, or been
 * given up, before another run may take the edit over. Given up, it may or may not have
 * been applied: the next attempt reads the item first.
 */
export const UPDATE_TIMEOUT_MS = 90_000;

/**
 * One attempt at one edit. Throws for what a retry may cure. "taken": the lease ran out
 * before the write (another run holds the edit now), so nothing was written.
 */
async function attempt(
  deps: WriteBackDeps,
  spec: TableSpec,
  edit: WriteBackEdit,
  id: string,
): Promise<Outcome | "taken"> {
  const where = describeEdit(spec, edit);
  const key = itemKeyOf(spec, edit);
  if (typeof key === "string") return { status: "failed", detail: key };
  const writer = deps.writer(spec.region);
  if (typeof writer === "string") return { status: "pending", detail: `${where}: ${writer}` };
  const read = await readItem(deps, spec, key);
  // The read is consistent, so an item it does not find is gone: no retry can write the
  // edit (and retries would hold every later edit of the row behind this one). A conflict,
  // as an item deleted by its soft-delete flag is; the row is restored, which removes it.
  if (!read) {
    return {
      status: "conflict",
      detail: `${where}: the item is gone from ${spec.sourceTable} (deleted in DynamoDB since ` +
        "the row was built); the edit was not applied",
      source: Object.fromEntries(edit.columns.map((c) => [c, null])),
    };
  }
  // A measured step of the isolate's CPU (cpu_meter.ts), as a page's mapping is: an
  // item may be hundreds of KB, and the fixed charge per edit (EDIT_CPU_MS) was measured
  // on small ones (a review timed a 45 KB item's edit at 17-22 ms).
  const plan = deps.cpu.measure(() => planWriteBack(spec, edit, key, read));
  switch (plan.kind) {
    case "noop":
      return plan.rowDiffers
        ? {
          status: "applied",
          detail: `${where}: the item holds these values already (DynamoDB compares them ` +
            "equal: a set's members in another order, say), so nothing was written",
          restoreRow: true,
        }
        : { status: "applied", detail: `${where}: the item already holds the edit` };
    case "conflict":
      return { status: "conflict", detail: plan.detail, source: plan.source };
    case "refused":
      return { status: "failed", detail: plan.detail };
  }
  const newer = await newerObservation(deps, spec, key);
  if (newer) {
    return {
      status: "conflict",
      detail:
        `${where}: a newer observation of this key (${spec.collapse!.rangeAttribute} ${newer}) ` +
        `is in ${spec.sourceTable}, and the row will show it: the edit was not applied`,
      source: null,
    };
  }
  const [{ holds }] = await deps.sql<{ holds: boolean }[]>`
    select sync.hold_write_back(${id}::bigint, ${deps.worker}) as holds`;
  if (!holds) return "taken";
  try {
    await writer.send(new UpdateItemCommand(plan.input), {
      abortSignal: AbortSignal.timeout(UPDATE_TIMEOUT_MS),
    });
    return { status: "applied", detail: `${where}: written to ${spec.sourceTable}` };
  } catch (error) {
    if ((error as { name?: string }).name !== "ConditionalCheckFailedException") throw error;
  }
  // The condition failed: the item changed between the read and the update, or an
  // earlier try of this very update took effect and its answer was lost (a 500 after the
  // write, which the SDK retried): then the item holds the edit.
  const now = await readItem(deps, spec, key);
  if (now && planWriteBack(spec, edit, key, now).kind === "noop") {
    return { status: "applied", detail: `${where}: written to ${spec.sourceTable}` };
  }
  const source = now ? sourceValues(spec, edit, now) : null;
  return {
    status: "conflict",
    detail:
      `${where}: the item changed in DynamoDB while the edit was written (the condition failed), ` +
      "and holds other values now: the edit was not applied, or (an earlier try of the same " +
      "update, whose answer was lost) was applied and changed since",
    source,
  };
}
