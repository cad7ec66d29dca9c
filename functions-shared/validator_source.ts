/**
 * The validator's reads of the source (docs/sync-semantics.md, "Verification"): the
 * parallel Scan, each page's expected rows (and unmappable items) staged in Postgres in
 * the transaction that moves the page's checkpoint, and consistent point reads of one
 * key (GetItem, or a Query of every observation for a collapsed table).
 *
 * @module
 */

import { GetItemCommand, QueryCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import type { ValidatorDeps } from "./checksum_validator.ts";
import { encodeJson } from "./dynamo_encoder.ts";
import type { TableSpec } from "./table_registry.ts";
import { expectedPage, type Item, pointReadKey, type RowKey } from "./validator_plan.ts";
import { ReadPacer, realPacing, segmentBudget, withBackoff } from "./scan_pacing.ts";

/** A table's read budget for a validation when VALIDATOR_MAX_RCU_PER_SECOND is not given. */
const DEFAULT_RCU_PER_SECOND = 250;

/** The JSON of the expected rows of some items (none when all are soft deletes or unmappable). */
function expectedJson(spec: TableSpec, items: Item[]) {
  const { rows, unmappable } = expectedPage(spec, items, new Date());
  return { json: rows.length > 0 ? encodeJson(rows) : undefined, unmappable };
}

/** Stages the expected rows of a point read again (a recheck), marking the run's progress. */
export async function stage(deps: ValidatorDeps, spec: TableSpec, run: number, items: Item[]) {
  const { json } = expectedJson(spec, items);
  await deps.sql.begin(async (tx) => {
    if (json) {
      await tx`select sync.stage_checksum_items(${run}, ${spec.targetTable}, ${json}::text::jsonb)`;
    }
    await tx`update public.sync_checksums set progress_at = now() where id = ${run}`;
  });
}

/**
 * Scans the source in parallel segments, from the run's checkpoints, staging every page
 * in the transaction that moves the page's checkpoint. Returns whether the whole table
 * was read, or the budget ran out first.
 */
export async function stageSource(
  deps: ValidatorDeps,
  spec: TableSpec,
  run: number,
): Promise<"complete" | "budget"> {
  const client = deps.dynamo(spec.region);
  const segments = deps.segments ?? 8;
  const [{ scan_state: state }] = await deps.sql<{ scan_state: Record<string, Item | "done"> }[]>`
    select scan_state from public.sync_checksums where id = ${run}`;
  const started = performance.now();
  let cpu = 0;
  let pages = 0;
  const budget = deps.budget;
  const cpuUsed = () => deps.cpu?.usedMs() ?? cpu;
  const spent = () =>
    budget !== undefined &&
    (cpuUsed() >= budget.cpuMs || performance.now() - started >= budget.wallMs ||
      (budget.pages !== undefined && pages >= budget.pages));
  const pacing = deps.pacing ?? realPacing;
  const perSegment = segmentBudget(deps.maxRcuPerSecond ?? DEFAULT_RCU_PER_SECOND, segments);
  // A few segments at a time, not all: the Edge Runtime counts CPU per isolate, and each
  // segment's page in flight when the budget is reached still adds to it (run_gate.ts).
  const scanSegment = async (segment: number): Promise<boolean> => {
    const checkpoint = state[String(segment)];
    if (checkpoint === "done") return true;
    let start: Item | undefined = checkpoint;
    const pacer = new ReadPacer(perSegment, pacing);
    while (true) {
      if (spent()) return false;
      pages++;
      await pacer.wait();
      // Consistent, as the backfill's: an eventually consistent page may show an item as
      // it was up to a moment ago, and the comparison would report a divergence that is
      // not there (or miss one). Paced to the validator's share of the table's read
      // capacity, with backoff on throttling (functions-shared/scan_pacing.ts).
      const page: {
        Items?: Item[];
        LastEvaluatedKey?: Item;
        ConsumedCapacity?: { CapacityUnits?: number };
      } = await withBackoff(
        () =>
          client.send(
            new ScanCommand({
              TableName: spec.sourceTable,
              Segment: segment,
              TotalSegments: segments,
              ExclusiveStartKey: start,
              Limit: deps.pageSize ?? 1000,
              ConsistentRead: true,
              ReturnConsumedCapacity: "TOTAL",
            }),
          ),
        (error, waitMs) =>
          deps.log?.(
            `validation of ${spec.sourceTable} segment ${segment}: ${error.name}; ` +
              `again in ${Math.round(waitMs)} ms`,
          ),
        pacing,
      );
      pacer.spent(page.ConsumedCapacity?.CapacityUnits ?? 1);
      const items = page.Items ?? [];
      const t = performance.now();
      const { json, unmappable } = deps.cpu
        ? deps.cpu.measure(() => expectedJson(spec, items))
        : expectedJson(spec, items);
      cpu += performance.now() - t;
      start = page.LastEvaluatedKey;
      const next = JSON.stringify(start ?? "done");
      await deps.sql.begin(async (tx) => {
        if (json) {
          await tx`select sync.stage_checksum_items(${run}, ${spec.targetTable}, ${json}::text::jsonb)`;
        }
        await tx`update public.sync_checksums
                 set source_items = source_items + ${items.length},
                     scan_state = jsonb_set(scan_state, ${[
          String(segment),
        ]}::text[], ${next}::text::jsonb),
                     unmappable = unmappable || ${JSON.stringify(unmappable)}::text::jsonb,
                     progress_at = now()
                 where id = ${run}`;
      });
      if (!start) return true;
    }
  };
  const queue = Array.from({ length: segments }, (_, segment) => segment);
  const done: boolean[] = [];
  await Promise.all(
    Array.from({ length: Math.min(deps.segmentsAtOnce ?? 2, segments) }, async () => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
        done[next] = await scanSegment(next);
      }
    }),
  );
  return done.every(Boolean) ? "complete" : "budget";
}

/** The source's current items for one target key (all observations for a collapsed table). */
export async function pointRead(
  deps: ValidatorDeps,
  spec: TableSpec,
  key: RowKey,
): Promise<Item[]> {
  const client = deps.dynamo(spec.region);
  const sourceKey = pointReadKey(spec, key);
  if (!spec.collapse) {
    const { Item } = await client.send(
      new GetItemCommand({ TableName: spec.sourceTable, Key: sourceKey, ConsistentRead: true }),
    );
    return Item ? [Item] : [];
  }
  const [hash] = Object.keys(sourceKey);
  const items: Item[] = [];
  let start: Item | undefined;
  do {
    const page = await client.send(
      new QueryCommand({
        TableName: spec.sourceTable,
        KeyConditionExpression: "#h = :h",
        ExpressionAttributeNames: { "#h": hash },
        ExpressionAttributeValues: { ":h": sourceKey[hash] },
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}
