/**
 * `npm start [-- --scale N] [-- --seed N]`: the main job on the embedded stack
 * (interfaces.md, "npm start"). Starts the stack; loads the demo data set into a fresh
 * DynamoDB Local (streams on after the load, as on AWS before a backfill); backfills
 * every table through the import-worker with a progress bar per table; pushes a burst
 * of live changes through DynamoDB Streams -> the Lambda handler -> the webhook
 * (inserts, updates, deletes, an Amplify soft delete, and late and duplicated
 * deliveries); validates every table; prints the migration report. Exits 0 only if
 * every table matches, no source item is unmappable and no dead letter is open (each
 * named in the report with its table and count).
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type AttributeValue,
  DeleteItemCommand,
  DescribeTableCommand,
  PutItemCommand,
  ScanCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import type postgres from "postgres";
import { loadReportDataSet } from "../demo/load_report_data_set.ts";
import { dynamoClients } from "../functions-shared/dynamo_client.ts";
import { connectDb } from "../functions-shared/sync_db.ts";
import { TABLES, type TableSpec } from "../functions-shared/table_registry.ts";
import type { Unmappable } from "../functions-shared/validator_plan.ts";
import { localDynamo } from "../local-stack/source_tables.ts";
import { listShards, localStreams, readShard } from "../local-stack/stream_reader.ts";
import { signWebhook } from "../functions-shared/webhook_signing.ts";
import { up } from "../local-stack/stack.ts";
import { readStackEnv, type StackEnv } from "../local-stack/stack_env.ts";
import { followBackfills, startBackfills } from "./backfill.ts";

type Item = Record<string, AttributeValue>;

const say = (line = "") => console.log(line);

/** Every item of a table (for the live burst and the report's distinct keys). */
async function scanAll(env: StackEnv, spec: TableSpec): Promise<Item[]> {
  const items: Item[] = [];
  let start: Item | undefined;
  do {
    const page = await localDynamo(env, spec.region).send(
      new ScanCommand({ TableName: spec.sourceTable, ExclusiveStartKey: start }),
    );
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

/** The live phase: changes of every kind through the real stream path. */
async function liveBurst(env: StackEnv, seed: number): Promise<number> {
  const table = (name: string) => TABLES.find((t) => t.targetTable === name)!;
  const put = (spec: TableSpec, item: Item) =>
    localDynamo(env, spec.region).send(
      new PutItemCommand({ TableName: spec.sourceTable, Item: item }),
    );
  const remove = (spec: TableSpec, key: Item) =>
    localDynamo(env, spec.region).send(
      new DeleteItemCommand({ TableName: spec.sourceTable, Key: key }),
    );
  let changes = 0;
  const actions = table("firespring_actions");
  for (let i = 0; i < 50; i++) {
    await put(actions, {
      action_id: { S: `live-${seed}-${i}` },
      action_type: { S: "page_view" },
      timestamp: { N: String(1770379200 + i) },
      data: { M: { live: { BOOL: true } } },
    });
    changes++;
  }
  const existing = (await scanAll(env, actions)).filter((a) => !a.action_id.S!.startsWith("live-"));
  for (const item of existing.slice(0, 20)) {
    await remove(actions, { action_id: item.action_id });
    changes++;
  }
  const visitors = table("firespring_visitors");
  const observations = await scanAll(env, visitors);
  const byVisitor = new Map<string, Item[]>();
  for (const o of observations) {
    byVisitor.set(o.session_id.S!, [...(byVisitor.get(o.session_id.S!) ?? []), o]);
  }
  let v = 0;
  for (const [id, items] of byVisitor) {
    if (v++ >= 20) break;
    const sorted = items.sort((a, b) => Number(a.timestamp.N) - Number(b.timestamp.N));
    const latest = sorted.at(-1)!;
    if (v % 2 === 0 && sorted.length > 1) {
      // Delete the observation the row holds: the row falls back to the one before.
      await remove(visitors, { session_id: { S: id }, timestamp: latest.timestamp });
    } else {
      await put(visitors, {
        ...latest,
        timestamp: { N: String(Number(latest.timestamp.N) + 60) },
        pages_viewed: { N: String(Number(latest.pages_viewed?.N ?? 0) + 1) },
      });
    }
    changes++;
  }
  const traffic = table("firespring_traffic_sources");
  for (const item of (await scanAll(env, traffic)).slice(0, 20)) {
    await localDynamo(env, traffic.region).send(
      new UpdateItemCommand({
        TableName: traffic.sourceTable,
        Key: { source_id: item.source_id },
        UpdateExpression: "SET visitors = visitors + :one",
        ExpressionAttributeValues: { ":one": { N: "1" } },
      }),
    );
    changes++;
  }
  const leads = table("mmp_toledo_leads");
  const [lead] = await scanAll(env, leads);
  if (lead) {
    // Amplify's soft delete: the row goes away as if the item had been removed.
    await put(leads, { ...lead, _deleted: { BOOL: true }, _version: { N: "2" } });
    changes++;
  }
  const dashboard = table("toledo_dashboard");
  await put(dashboard, {
    pk: { S: "dashboard#toledo" },
    sk: { S: "metrics#2026-03" },
    metrics: { M: { visitors: { N: "12" } } },
    updated_at: { S: new Date().toISOString() },
  });
  changes++;
  return changes;
}

/**
 * Late and duplicated deliveries: every record the streams of the live phase hold, sent
 * to the webhook again, newest first, as a retrying Lambda or a replay would.
 */
async function redeliver(env: StackEnv): Promise<number> {
  let sent = 0;
  for (const spec of TABLES) {
    const { Table } = await localDynamo(env, spec.region).send(
      new DescribeTableCommand({ TableName: spec.sourceTable }),
    );
    const arn = Table?.LatestStreamArn;
    if (!arn) continue;
    const client = localStreams(env, spec.region);
    const records = [];
    for (const shard of await listShards(client, arn)) {
      records.push(...await readShard(client, arn, shard.ShardId!));
    }
    records.reverse();
    for (let i = 0; i < records.length; i += 25) {
      const body = JSON.stringify({ records: records.slice(i, i + 25) });
      const response = await fetch(`${env.FUNCTIONS_URL}/mmp-toledo-sync`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...signWebhook(env.SYNC_WEBHOOK_SECRET, body),
        },
        body,
      });
      if (!response.ok) {
        throw new Error(`redelivery refused: ${response.status} ${await response.text()}`);
      }
      await response.body?.cancel();
      sent += Math.min(25, records.length - i);
    }
  }
  return sent;
}

/** Waits until the poller has handed every stream record to the webhook. */
async function drained(sql: postgres.Sql, timeoutMs = 120_000): Promise<void> {
  // The stream is drained when no row changed for a few seconds.
  const deadline = Date.now() + timeoutMs;
  let last = "";
  let stableSince = Date.now();
  while (Date.now() < deadline) {
    const [row] = await sql.unsafe(
      `select ${
        TABLES.map((t) => `(select max(synced_at) from public.${t.targetTable})`).join(
          " || ' ' || ",
        )
      } as marks`,
    );
    if (row.marks !== last) {
      last = row.marks;
      stableSince = Date.now();
    } else if (Date.now() - stableSince > 5_000) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function validate(env: StackEnv, sql: postgres.Sql, spec: TableSpec) {
  const response = await fetch(`${env.FUNCTIONS_URL}/data-checksum-validator`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${env.SUPABASE_SERVICE_ROLE_KEY}`,
      "content-type": "application/json",
    },
    body: JSON.stringify({ table: spec.targetTable, repair: false }),
  });
  let result = await response.json();
  if (response.status === 202) {
    for (;;) {
      const [run] = await sql`select * from public.sync_checksums where id = ${result.runId}`;
      if (run.status !== "running") {
        result = {
          sourceItems: Number(run.source_items),
          targetRows: Number(run.target_rows),
          match: run.match,
          unmappable: run.unmappable,
        };
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  } else if (response.status !== 200) {
    throw new Error(`validating ${spec.targetTable}: ${response.status} ${JSON.stringify(result)}`);
  }
  return result as {
    sourceItems: number;
    targetRows: number;
    match: boolean;
    unmappable: Unmappable[];
  };
}

/**
 * What keeps the migration from being done although rows may match: source items that
 * map to no row (from the validation) and dead letters not yet replayed. One line per
 * table and kind, naming the count, then the first few items with their reasons.
 */
export async function openProblems(
  sql: postgres.Sql,
  unmappable: Map<string, Unmappable[]>,
): Promise<string[]> {
  const lines: string[] = [];
  for (const [table, items] of unmappable) {
    if (items.length === 0) continue;
    lines.push(`${table}: ${items.length} unmappable source items`);
    for (const item of items.slice(0, 5)) lines.push(`    ${item.reason}`);
  }
  const letters = await sql<{ table: string; n: number; reason: string }[]>`
    select coalesce(target_table, source_table, '(no table)') as table, count(*)::int as n,
           min(reason) as reason
    from sync.dead_letters where replayed_at is null group by 1 order by 1`;
  for (const { table, n, reason } of letters) {
    lines.push(
      `${table}: ${n} open dead letters (select * from sync.dead_letters where replayed_at is null)`,
    );
    lines.push(`    ${reason}`);
  }
  return lines;
}

function distinctKeys(spec: TableSpec, items: Item[]): number {
  const keyAttributes = spec.collapse
    ? [spec.sourceKey[0].name]
    : spec.sourceKey.map((k) => k.name);
  return new Set(items.map((i) => keyAttributes.map((a) => i[a]?.S ?? i[a]?.N).join("\u0000")))
    .size;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      scale: { type: "string", default: "1" },
      seed: { type: "string", default: "20260206" },
    },
  });
  const scale = Number(values.scale);
  const seed = Number(values.seed);
  const started = performance.now();
  await up();
  const env = readStackEnv();
  const sql = connectDb(env.DATABASE_URL, 4);
  try {
    say(`npm start: loading the demo data set (seed ${seed}, scale ${scale}) into DynamoDB Local`);
    await loadReportDataSet(env, sql, seed, scale);

    say("\nnpm start: backfilling every table through the import-worker");
    const backfillStarted = performance.now();
    const envOf = (name: string) => (env as unknown as Record<string, string>)[name];
    const { jobs, expected } = await startBackfills(sql, dynamoClients(envOf), [...TABLES], 8);
    const failures = await followBackfills(sql, jobs, expected);
    if (failures.length > 0) throw new Error(failures.join("\n"));
    const backfillSeconds = (performance.now() - backfillStarted) / 1000;

    say("\nnpm start: live changes through DynamoDB Streams -> Lambda -> webhook");
    const liveStarted = performance.now();
    const changes = await liveBurst(env, seed);
    await drained(sql);
    const again = await redeliver(env);
    say(`npm start: ${again} stream records delivered again, late and out of order`);
    await drained(sql);
    const liveSeconds = (performance.now() - liveStarted) / 1000;
    say(`npm start: ${changes} live changes applied in ${liveSeconds.toFixed(1)}s`);

    say("\nnpm start: validating every table");
    const rows: string[][] = [];
    const unmappable = new Map<string, Unmappable[]>();
    let allMatch = true;
    const totals = { items: 0, keys: 0, rows: 0 };
    for (const spec of TABLES) {
      const items = await scanAll(env, spec);
      const result = await validate(env, sql, spec);
      const keys = distinctKeys(spec, items);
      allMatch &&= result.match;
      unmappable.set(spec.targetTable, result.unmappable ?? []);
      totals.items += items.length;
      totals.keys += keys;
      totals.rows += result.targetRows;
      const dedup = items.length === 0
        ? "N/A"
        : `${((1 - result.targetRows / items.length) * 100).toFixed(1)}%`;
      rows.push([
        spec.sourceTable,
        String(items.length),
        String(keys),
        String(result.targetRows),
        dedup,
        result.match ? "match" : "MISMATCH",
      ]);
    }
    rows.push([
      "total",
      String(totals.items),
      String(totals.keys),
      String(totals.rows),
      totals.items ? `${((1 - totals.rows / totals.items) * 100).toFixed(1)}%` : "N/A",
      allMatch ? "match" : "MISMATCH",
    ]);
    const header = [
      "source table",
      "DynamoDB items",
      "distinct keys",
      "Supabase rows",
      "dedup rate",
      "checksum",
    ];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (cells: string[]) =>
      cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
    say("\nMigration report");
    say(line(header));
    say(widths.map((w) => "-".repeat(w)).join("  "));
    for (const row of rows) say(line(row));
    say(
      `\nbackfill ${backfillSeconds.toFixed(1)}s, live changes ${liveSeconds.toFixed(1)}s, ` +
        `whole run ${((performance.now() - started) / 1000).toFixed(1)}s`,
    );
    say(
      `\nWhere to look next:\n  psql ${env.DATABASE_URL}\n` +
        "  select * from sync.status;\n" +
        "  select city, state, count(*), avg(session_duration_seconds) from firespring_visitors_detailed\n" +
        "    where country_code = 'us' group by city, state order by count(*) desc;\n" +
        "  select referrer_type, referrer_domain, count(*) from firespring_visitors_detailed\n" +
        "    group by referrer_type, referrer_domain order by count(*) desc;\n" +
        "  select os, browser, count(*) from firespring_visitors_detailed group by os, browser order by count(*) desc;",
    );
    const problems = await openProblems(sql, unmappable);
    if (problems.length > 0) {
      say("\nnpm start: the migration is not done; these need a fix:");
      for (const problem of problems) say(`  ${problem}`);
    }
    Deno.exit(allMatch && problems.length === 0 ? 0 : 1);
  } catch (error) {
    console.error(`npm start: ${(error as Error).message}`);
    Deno.exit(1);
  } finally {
    await sql.end();
  }
}
