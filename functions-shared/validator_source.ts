/**
 * The validator's reads of the source (docs/sync-semantics.md, "Verification"): the
 * parallel Scan on the backfill's leased segments (functions-shared/segment_scan.ts), each
 * page's expected rows (and unmappable items) staged in Postgres in the transaction that
 * moves the segment's checkpoint, and consistent point reads of one
 * key (GetItem, or a Query of every observation for a collapsed table).
 *
 * @module
 */

import { GetItemCommand, QueryCommand } from "@aws-sdk/client-dynamodb";
import type { ValidatorDeps } from "./checksum_validator.ts";
import { encodeJson } from "./dynamo_encoder.ts";
import type { TableSpec } from "./table_registry.ts";
import { expectedPage, type Item, pointReadKey, type RowKey } from "./validator_plan.ts";
import { estimatingMeter } from "./cpu_meter.ts";
import { type Claim, type ScanResult, scanSegments } from "./segment_scan.ts";

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
 * Scans the run's segments (the backfill's leased Scan, functions-shared/segment_scan.ts),
 * staging every page's expected rows, unmappable items and item count in the transaction
 * that moves the segment's checkpoint. Returns what the request did: "no work" once no
 * segment of the run is left to claim (done, or leased by another request), "budget"
 * when the budget ran out first (the segment was given back), "throttled" when the
 * Scan kept failing (the segment was given back; the heartbeat goes on later).
 */
export async function scanForRun(
  deps: ValidatorDeps,
  spec: TableSpec,
  run: number,
  worker: string,
  overBudget: () => boolean,
): Promise<ScanResult> {
  const segmentsAtOnce = deps.segmentsAtOnce ?? 2;
  return await scanSegments(
    {
      sql: deps.sql,
      dynamo: deps.dynamo,
      cpu: deps.cpu ?? estimatingMeter(() => 0, 1),
      maxRcuPerSecond: deps.maxRcuPerSecond ?? DEFAULT_RCU_PER_SECOND,
      // At most segmentsAtOnce requests scan a run (wakeAnother below): they share the budget.
      segmentsAtOnce,
      pacing: deps.pacing,
      log: deps.log,
    },
    worker,
    {
      claim: async () => {
        const [claim] = await deps.sql<
          Claim[]
        >`select * from sync.claim_segment(${worker}, ${run})`;
        return claim;
      },
      // A few segments at a time, not all: each request's pages add to its isolate's CPU.
      wakeAnother: async () => {
        if (!deps.wake) return;
        const [state] = await deps.sql<{ pending: number; running: number }[]>`
        select count(*) filter (where s.status = 'pending'
                                   or (s.status = 'running' and s.lease_expires_at < now()))::int as pending,
               count(*) filter (where s.status = 'running' and s.lease_expires_at >= now())::int as running
        from sync.backfill_segments s join sync.backfill_jobs j on j.id = s.job_id
        where j.checksum_run_id = ${run}`;
        if (state && state.pending > 0 && state.running < segmentsAtOnce) await deps.wake(run);
      },
      overBudget,
      // The caller hands on (checksum_validator.ts answers a Continuation).
      handOn: async () => {},
      describe: (claim) =>
        `validation run ${run} segment ${claim.segment}/${claim.total_segments} of ${claim.source_table}`,
      writePage: async (tx, _claim, page) => {
        const cpu = deps.cpu;
        const { json, unmappable } = cpu
          ? cpu.measure(() => expectedJson(spec, page.items))
          : expectedJson(spec, page.items);
        if (json) {
          await tx`select sync.stage_checksum_items(${run}, ${spec.targetTable}, ${json}::text::jsonb)`;
        }
        await tx`update public.sync_checksums
               set source_items = source_items + ${page.items.length},
                   unmappable = unmappable || ${JSON.stringify(unmappable)}::text::jsonb,
                   progress_at = now()
               where id = ${run}`;
        return 0;
      },
    },
  );
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
