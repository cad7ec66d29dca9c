/**
 * The validator benchmark (`npm run bench -- validator`): validating `firespring_actions`
 * (28,936 items at scale 1, demo/demo_data.ts) through the `data-checksum-validator`
 * function, against the raw limit measured in the same run: a bare parallel Scan (8
 * segments) of the same table through the same DynamoDB proxy, with its faults and
 * throttling, read as the validator reads (eventually consistent, the SDK's retries) and
 * within the same read budget (VALIDATOR_MAX_RCU_PER_SECOND, shared by the segments:
 * tests/table_pacer.ts), as the backfill's raw limit is. Then every table validated, one
 * after the other, matching, then with 10 divergent keys.
 *
 * It uses the data set the backfill section left (or loads and backfills it itself when
 * the actions table is empty).
 *
 * @module
 */

import { type AttributeValue, type DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb";
import type postgres from "postgres";
import { loadReportDataSet } from "../demo/load_report_data_set.ts";
import { TABLES } from "../functions-shared/table_registry.ts";
import { localDynamo } from "../local-stack/aws/source_tables.ts";
import { stackEnvReader } from "../local-stack/stack_env.ts";
import { edgeCpuSince, markEdgeCpu, printEdgeCpu } from "./bench_edge_cpu.ts";
import { backfillsDone } from "./bench_checks.ts";
import { callFunction, eventually, serviceRoleHeaders, stack } from "./stack_clients.ts";
import { TablePacer } from "./table_pacer.ts";
import { type Figure, formatted, Goals } from "./bench_goals.ts";

const SEGMENTS = 8;
const PAGE = 1000;
const ACTIONS = "firespring_actions";

type Item = Record<string, AttributeValue>;

/** The validator's read budget per table (functions-shared/settings.ts; 250 by default). */
const RCU_PER_SECOND = Number(stackEnvReader(stack)("VALIDATOR_MAX_RCU_PER_SECOND") ?? 250);

/**
 * Items of one segment, read as the validator reads them (eventually consistent, half the
 * read units of a consistent Scan: functions-shared/validator_source.ts; 1,000 a page).
 */
async function scanSegment(
  client: DynamoDBClient,
  table: string,
  segment: number,
  pacer: TablePacer,
) {
  let items = 0;
  let start: Item | undefined;
  do {
    const booked = await pacer.take();
    const page = await client.send(
      new ScanCommand({
        TableName: table,
        Segment: segment,
        TotalSegments: SEGMENTS,
        ExclusiveStartKey: start,
        Limit: PAGE,
        ConsistentRead: false,
        ReturnConsumedCapacity: "TOTAL",
      }),
    );
    pacer.settle(booked, page.ConsumedCapacity?.CapacityUnits ?? 1);
    items += page.Items?.length ?? 0;
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

/** Seconds and items of a bare parallel Scan of the actions table. */
async function rawScan() {
  const spec = TABLES.find((t) => t.targetTable === ACTIONS)!;
  const client = localDynamo(stack, spec.region);
  const t = performance.now();
  const pacer = new TablePacer(RCU_PER_SECOND);
  const counts = await Promise.all(
    Array.from({ length: SEGMENTS }, (_, s) => scanSegment(client, spec.sourceTable, s, pacer)),
  );
  return { seconds: (performance.now() - t) / 1000, items: counts.reduce((a, b) => a + b, 0) };
}

/** A second and a little more without reads of the table. */
const rest = () => new Promise((resolve) => setTimeout(resolve, 1_100));

/** Waits until run `runId` has ended; returns its row. */
async function ended(sql: postgres.Sql, runId: number) {
  return await eventually(`validation run ${runId}`, async () => {
    const [run] = await sql`select status, error, source_items::int, missing, unexpected, different
                            from public.sync_checksums where id = ${runId}`;
    return run.status === "running" || run.status === "queued" ? undefined : run;
  }, 600_000);
}

/** Validates one table through the function and waits for the result. */
export async function validateOne(sql: postgres.Sql, table: string, repair = false) {
  const t = performance.now();
  const response = await callFunction("data-checksum-validator", {
    method: "POST",
    headers: serviceRoleHeaders(),
    body: JSON.stringify({ table, repair }),
  });
  let result = await response.json();
  if (response.status === 409 && result.runId !== undefined) {
    // A run of the table under way (a revalidation an earlier repair left): once it ends,
    // the table's own validation is asked for again.
    await ended(sql, result.runId);
    return await validateOne(sql, table, repair);
  }
  // The run's id, by which its Scan's pages are counted (runPages).
  const runId = Number(result.runId);
  if (response.status === 202) result = await ended(sql, runId);
  else if (response.status !== 200) {
    throw new Error(`validating ${table}: ${response.status} ${JSON.stringify(result)}`);
  }
  if (result.status === "failed") throw new Error(`validating ${table}: ${result.error}`);
  // The answer lists at most MAX_KEYS_READ keys of each kind; `counts` has them all.
  const lists = result.counts ?? {
    missing: result.missing.length,
    unexpected: result.unexpected.length,
    different: result.different.length,
  };
  const divergent = lists.missing + lists.unexpected + lists.different;
  return { seconds: (performance.now() - t) / 1000, divergent, result, runId };
}

/**
 * The pages validation run `runId` of `table` read: its Scan's segments' (a run scans on
 * the backfill's machinery, its job marked with checksum_run_id,
 * 20261128001100_validator_segments.sql). A run that read none did not validate.
 */
async function runPages(sql: postgres.Sql, table: string, runId: number): Promise<number> {
  const [{ pages }] = await sql`
    select coalesce(sum(s.pages), 0)::int as pages
    from sync.backfill_segments s join sync.backfill_jobs j on j.id = s.job_id
    where j.checksum_run_id = ${runId}`;
  if (pages === 0) {
    throw new Error(
      `bench validator: public.${table}: validation run ${runId}: expected its Scan's pages, found none`,
    );
  }
  return pages;
}

/**
 * Validates every table through the function, one after the other (as the backfill
 * section always measured it); returns the time, the divergent keys found and the pages
 * the runs' Scans read.
 */
export async function validateAll(sql: postgres.Sql, repair = false) {
  const [{ since }] = await sql`select now() as since`;
  const t = performance.now();
  let divergent = 0;
  for (const spec of TABLES) {
    divergent += (await validateOne(sql, spec.targetTable, repair)).divergent;
  }
  const seconds = (performance.now() - t) / 1000;
  // The pages the runs' Scans read: their segments are the backfill's (checksum_run_id).
  const [{ pages }] = await sql`
    select coalesce(sum(s.pages), 0)::int as pages
    from sync.backfill_segments s join sync.backfill_jobs j on j.id = s.job_id
    where j.checksum_run_id is not null and j.requested_at >= ${since}`;
  return { seconds, divergent, pages };
}

/**
 * Makes sure the data set is loaded and backfilled (the backfill section leaves it so):
 * loads it when the actions' source table holds fewer items than the data set (tests
 * leave a few), and backfills it when their target does (the export section empties the
 * targets, not the sources).
 */
async function ensureData(sql: postgres.Sql) {
  const scale = Number(Deno.env.get("BENCH_SCALE") ?? 1);
  const loaded = (await rawScan()).items >= 28_000 * scale;
  const [{ rows }] = await sql`select count(*)::int as rows from public.firespring_actions`;
  if (loaded && rows >= 28_000 * scale) return;
  if (!loaded) {
    await loadReportDataSet(stack, sql, 20260206, scale, (l) => console.error(l));
  }
  const jobs: string[] = [];
  for (const spec of TABLES) {
    const [row] = await sql`select sync.start_backfill(${spec.sourceTable}, ${SEGMENTS}) as id`;
    jobs.push(row.id);
  }
  await backfillsDone(sql, "validator", jobs);
}

/** The benchmark; prints `name: value` lines. */
export async function benchValidator(sql: postgres.Sql, figure: Figure, goals = new Goals()) {
  await ensureData(sql);
  // Warm up both paths (the function's isolate, the proxy's connections).
  await validateOne(sql, "toledo_dashboard");
  const rounds = Number(Deno.env.get("BENCH_VALIDATOR_ROUNDS") ?? 2);
  // Over every round, so that no round is picked.
  const total = { validate: 0, raw: 0 };
  for (let round = 0; round < rounds; round++) {
    // Each Scan starts on a table rested for a second, the most unused capacity the proxy
    // keeps (local-stack/aws/capacity.ts): the validation started at once after the raw
    // Scan, whose start had spent that second, and its first pages were throttled (1 s
    // backoff) in about half the rounds, while the raw Scan came after the validation's
    // compare and report and found it full.
    await rest();
    const raw = await rawScan();
    await rest();
    const mark = await markEdgeCpu();
    const validated = await validateOne(sql, ACTIONS);
    // The run's row (a 202 followed) says source_items; the function's answer (a 200)
    // sourceItems: a check of one alone passed a run of no item answered the other way.
    const sourceItems = validated.result.source_items ?? validated.result.sourceItems;
    if (validated.divergent !== 0 || !(sourceItems > 0)) {
      throw new Error(`validating ${ACTIONS}: ${JSON.stringify(validated.result).slice(0, 500)}`);
    }
    console.error(
      `bench: round ${round + 1}: raw scan ${raw.seconds.toFixed(2)} s (${raw.items} items), ` +
        `validation ${validated.seconds.toFixed(2)} s`,
    );
    if (round === rounds - 1) {
      printEdgeCpu(
        "validate_actions",
        await edgeCpuSince(mark, "data-checksum-validator"),
        await runPages(sql, ACTIONS, validated.runId),
        figure,
      );
    }
    total.validate += validated.seconds;
    total.raw += raw.seconds;
  }
  const validate = total.validate / rounds;
  const raw = total.raw / rounds;
  figure("validate_actions_seconds", validate, 2);
  figure("raw_parallel_scan_actions_seconds", raw, 2);
  figure("validate_actions_vs_raw_scan", validate / raw, 2);
  goals.add({
    path: `validating ${ACTIONS} (mean of ${rounds} rounds)`,
    now: `${formatted(validate, 1)} s`,
    raw: `${formatted(raw, 1)} s (bare parallel Scan, 8 segments, same read budget)`,
    ratio: validate / raw,
    kind: "max",
    target: 1.5,
  });
  if (Deno.env.get("BENCH_VALIDATOR_ACTIONS_ONLY") === "1") return;

  const validatorCpu = await markEdgeCpu();
  const matching = await validateAll(sql);
  figure("validate_all_matching_seconds", matching.seconds, 2);
  figure("validate_all_matching_divergent_keys", matching.divergent, 0);
  printEdgeCpu(
    "validator",
    await edgeCpuSince(validatorCpu, "data-checksum-validator"),
    matching.pages,
    figure,
  );
  // Drift made on purpose, not edits to write back (20261128002500_write_back.sql).
  await sql.begin(async (tx) => {
    await tx`set local sync.write_back_skip = 'on'`;
    await tx`update public.firespring_actions set action_type = 'drifted',
              sync_changed_at = now() - interval '1 hour'
              where action_id in (select action_id from public.firespring_actions order by action_id limit 4)`;
    await tx`delete from public.firespring_visitors
              where visitor_id in (select visitor_id from public.firespring_visitors order by visitor_id limit 3)`;
    await tx`update public.firespring_segments set member_count = member_count + 1,
              sync_changed_at = now() - interval '1 hour'
              where segment_id in (select segment_id from public.firespring_segments order by segment_id limit 3)`;
  });
  const drifted = await validateAll(sql);
  figure("validate_all_10_divergent_seconds", drifted.seconds, 2);
  figure("validate_all_10_divergent_keys_found", drifted.divergent, 0);
  await validateAll(sql, true);
}
