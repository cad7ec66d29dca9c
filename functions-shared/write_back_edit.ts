/**
 * One claimed write-back, ended (write_back_run.ts claims them and keeps the run's
 * budgets): its edit written to its DynamoDB item, or found there already, or refused or
 * in conflict, its row then put back as the source shows it; one whose attempts are
 * spent, or whose restore is due, put back; one of a table this version does not map,
 * failed. The statuses and what each does are write_back_run.ts's module comment.
 *
 * @module
 */

import { encodeJson } from "./dynamo_encoder.ts";
import { parseJsonExact } from "./dynamo_numbers.ts";
import { byTargetTable, type TableSpec } from "./table_registry.ts";
import { causeOf, readItem, restore, type Restored } from "./write_back_source.ts";
import { describeEdit, itemKeyOf, planWriteBack, type WriteBackEdit } from "./write_back_update.ts";
import { attempt, type EditDeps, type Outcome } from "./write_back_attempt.ts";

/** A write-back as `sync.claim_write_backs` hands it to a run. */
export interface Claimed {
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

/** How an edit ended, and its line for the log. */
export interface Ended {
  status: string | null;
  line: string;
}

/** A claimed write-back that has ended (failed, or a conflict), its restore due. */
export const restoreDue = (row: Claimed) => row.status === "failed" || row.status === "conflict";

/**
 * Ends one claimed write-back: one of a table not mapped fails, one whose restore is due
 * is put back, any other is written.
 */
export function endEdit(deps: EditDeps, row: Claimed): Promise<Ended> {
  if (!byTargetTable(row.target_table)) return unmapped(deps, row);
  return restoreDue(row) ? spent(deps, row) : writeOne(deps, row);
}

/**
 * A write-back of a table this version of the function does not map (a migration pushed
 * before the functions were deployed): it fails, saying so, and the run goes on with the
 * others. Its row keeps the edit, which DynamoDB does not have; nothing here can read the
 * source's state of a table it does not know to put the row back.
 */
async function unmapped(deps: EditDeps, row: Claimed): Promise<Ended> {
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

async function writeOne(deps: EditDeps, row: Claimed): Promise<Ended> {
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
  deps: EditDeps,
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
async function spent(deps: EditDeps, row: Claimed): Promise<Ended> {
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
  deps: EditDeps,
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
  deps: EditDeps,
  spec: TableSpec,
  edit: WriteBackEdit,
): Promise<string> {
  const restored = await restore(deps, spec, edit);
  if (restored.done) return restored.text;
  return `; the row still shows the values as edited: putting them back as the source shows ` +
    `them failed (${restored.cause ?? "see the log"}); the table's next validation repairs it`;
}
