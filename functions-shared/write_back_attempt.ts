/**
 * One attempt at writing an edit to its DynamoDB item (write_back_edit.ts ends the
 * write-back by its outcome): the item read consistently, the update planned against it
 * (write_back_update.ts), a newer observation of a collapsed key looked for, the lease
 * held, then the conditional UpdateItem; a failed condition read again, since an earlier
 * try's lost answer may have written it.
 *
 * @module
 */

import type { CpuMeter } from "./cpu_meter.ts";
import { UpdateItemCommand } from "./dynamo_commands.ts";
import { type DynamoClient, DynamoError } from "./dynamo_http.ts";
import type { TableSpec } from "./table_registry.ts";
import { newerObservation, readItem, type SourceDeps, sourceValues } from "./write_back_source.ts";
import { describeEdit, itemKeyOf, planWriteBack, type WriteBackEdit } from "./write_back_update.ts";

/** What writing, and ending, an edit needs. */
export interface EditDeps extends SourceDeps {
  /** The writer's client (UpdateItem only), or why there is none (no credentials). */
  writer: (region: string) => DynamoClient | string;
  /** The run's name in leases. */
  worker: string;
  /** The isolate's CPU meter, created at its cold start (cpu_meter.ts). */
  cpu: CpuMeter;
  /** How long the UpdateItem may take (tests); {@link UPDATE_TIMEOUT_MS} unless given. */
  updateTimeoutMs?: number;
}

/** How an attempt ended. */
export type Outcome = {
  status: "applied" | "conflict" | "failed" | "pending";
  detail: string;
  source?: unknown;
  /** Applied, but the row shows the values otherwise than the source: put back from it. */
  restoreRow?: true;
};

/**
 * How long the UpdateItem may take, its SDK retries and, after a failed condition, its
 * read of the item again included: less than the lease that `sync.hold_write_back` renews
 * (2 minutes) just before it, so that it has ended, or been given up, before another run
 * may take the edit over. Given up, it may or may not have been applied: the next attempt
 * reads the item first.
 */
export const UPDATE_TIMEOUT_MS = 90_000;

/**
 * One attempt at one edit. Throws for what a retry may cure. "taken": the lease ran out
 * before the write (another run holds the edit now), so nothing was written.
 */
export async function attempt(
  deps: EditDeps,
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
  const timeoutMs = deps.updateTimeoutMs ?? UPDATE_TIMEOUT_MS;
  const deadline = AbortSignal.timeout(timeoutMs);
  // Given up at the deadline, the client throws the signal's bare reason ("The operation
  // was aborted due to timeout"), which named neither the request nor what became of it:
  // an attempt whose answer was held (a stall) may have been written.
  const givenUp = (error: unknown, what: string) => {
    if (!deadline.aborted || error instanceof DynamoError) return error;
    return new DynamoError(
      "TimeoutError",
      `UpdateItem on ${spec.sourceTable}: ${what}; it may have been written, which the ` +
        "next attempt's read of the item finds",
      {},
      "transient",
    );
  };
  try {
    await writer.send(new UpdateItemCommand(plan.input), { abortSignal: deadline });
    return { status: "applied", detail: `${where}: written to ${spec.sourceTable}` };
  } catch (error) {
    if ((error as { name?: string }).name !== "ConditionalCheckFailedException") {
      throw givenUp(error, `no answer within ${timeoutMs} ms, its retries included`);
    }
  }
  // The condition failed: the item changed between the read and the update, or an
  // earlier try of this very update took effect and its answer was lost (a 500 after the
  // write, which the SDK retried): then the item holds the edit. Read within the same
  // deadline, as the lease allows no more.
  const now = await readItem(deps, spec, key, deadline).catch((error) => {
    throw givenUp(
      error,
      `its condition failed, and the item's read again had no answer within ${timeoutMs} ms`,
    );
  });
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
