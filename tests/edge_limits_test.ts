/**
 * The local gateway enforces the hosted Edge Runtime's limits per isolate
 * (local-stack/supabase/edge_limits.ts): a request whose isolate passes the hard CPU limit
 * answers 546 `WORKER_LIMIT`; an isolate past the soft limit finishes its request and the
 * next one goes to a new isolate; the wall clock retires at half and kills at the limit.
 * Each of those runs a gateway of its own (with the `burn-cpu` test function) beside the
 * stack's. And the import-worker, under the stack's gateway and its hosted limits,
 * backfills a few thousand items without ever being killed for CPU, handing on
 * mid-segment without losing or repeating a page.
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import type postgres from "postgres";
import { runWorker } from "../functions-shared/backfill_worker.ts";
import type { CpuMeter } from "../functions-shared/cpu_meter.ts";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import { DENO_BIN, HOST, LOG_DIR, ROOT } from "../local-stack/config.ts";
import type { IsolateLine } from "../local-stack/supabase/edge_isolates.ts";
import { WORKER_LIMIT_BODY } from "../local-stack/supabase/edge_limits.ts";
import { batchWrite } from "../demo/load_dynamo.ts";
import { scanCount } from "./backfill_fixtures.ts";
import { connectDb, dynamo, eventually } from "./stack_clients.ts";

/** A gateway of the test's own, serving the test functions, with `limits`. */
async function startGateway(limits: Record<string, string>) {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const log = await Deno.makeTempFile({ prefix: "edge-isolates-", suffix: ".jsonl" });
  const child = new Deno.Command(DENO_BIN, {
    args: ["run", "-A", "--no-prompt", join(ROOT, "local-stack", "functions_gateway.ts")],
    env: {
      ...limits,
      EDGE_TEST_FUNCTIONS: "1",
      EDGE_GATEWAY_PORT: String(port),
      EDGE_ISOLATES_LOG: log,
    },
    stdout: "null",
    stderr: "null",
  }).spawn();
  const base = `http://${HOST}:${port}`;
  await eventually("the test gateway to listen", async () => {
    const response = await fetch(`${base}/_stack/health`).catch(() => undefined);
    await response?.body?.cancel();
    return response?.ok ? true : undefined;
  });
  return {
    /** Calls burn-cpu: burns `cpuMs` of CPU, keeps `allocMb` more memory, waits `sleepMs`. */
    burn: async (cpuMs: number, sleepMs = 0, allocMb = 0) => {
      const response = await fetch(
        `${base}/functions/v1/burn-cpu?cpu_ms=${cpuMs}&sleep_ms=${sleepMs}&alloc_mb=${allocMb}`,
      );
      return { status: response.status, headers: response.headers, body: await response.json() };
    },
    /** The live isolates of burn-cpu, as the gateway's health shows them. */
    isolates: async () => {
      const health = await (await fetch(`${base}/_stack/health`)).json();
      return health.functions.find((f: { name: string }) => f.name === "burn-cpu").isolates as {
        pid: number;
        retired: string | null;
      }[];
    },
    /** The isolates that ended, from the gateway's log. */
    lines: () => readLines(log),
    stop: async () => {
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(log).catch(() => {});
    },
  };
}

async function readLines(file: string): Promise<IsolateLine[]> {
  if (!existsSync(file)) return [];
  const text = await Deno.readTextFile(file);
  return text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
}

Deno.test("past the hard CPU limit the request answers 546 WORKER_LIMIT and the isolate's line says CPUTime", async () => {
  const gateway = await startGateway({});
  try {
    const answer = await gateway.burn(5_000);
    assert.equal(answer.status, 546);
    assert.deepEqual(answer.body, WORKER_LIMIT_BODY);
    assert.equal(answer.headers.get("sb-error-code"), "WORKER_LIMIT");
    const [line] = await eventually("the isolate's line", async () => {
      const lines = await gateway.lines();
      return lines.length > 0 ? lines : undefined;
    });
    assert.equal(line.function, "burn-cpu");
    assert.equal(line.reason, "CPUTime");
    assert.equal(line.requests, 1);
    assert.ok(line.cpu_ms >= 2_000, `cpu_ms ${line.cpu_ms}`);
    // The next request gets a new isolate.
    const next = await gateway.burn(0);
    assert.equal(next.status, 200);
    assert.notEqual(next.body.pid, line.pid);
  } finally {
    await gateway.stop();
  }
});

Deno.test("past the soft CPU limit the isolate finishes its request; the next goes to a new isolate", async () => {
  const gateway = await startGateway({});
  try {
    // Boot included, 1,200 ms of burning takes the isolate past the 1,000 ms soft limit.
    const first = await gateway.burn(1_200);
    assert.equal(first.status, 200);
    assert.ok(first.body.cpu_ms >= 1_000 && first.body.cpu_ms < 2_000, `${first.body.cpu_ms}`);
    const second = await gateway.burn(0);
    assert.equal(second.status, 200);
    assert.notEqual(second.body.pid, first.body.pid, "a retired isolate takes nothing new");
    const line = await eventually("the retired isolate to end", async () => {
      return (await gateway.lines()).find((l) => l.pid === first.body.pid);
    });
    assert.equal(line.reason, "retired: cpu soft limit");
    assert.equal(line.requests, 1);
    assert.ok(line.cpu_ms >= 1_000 && line.cpu_ms < 2_000, `cpu_ms ${line.cpu_ms}`);
    // The new isolate is still serving.
    assert.equal((await gateway.burn(0)).body.pid, second.body.pid);
  } finally {
    await gateway.stop();
  }
});

Deno.test("the wall clock retires an isolate at half and kills it at the limit: 546", async () => {
  const gateway = await startGateway({ EDGE_WALL_CLOCK_LIMIT_MS: "12000" });
  try {
    // A request that would take 20 s: its isolate is killed at 12 s. Another, on the same
    // isolate, ends 7 s after it starts, after the retirement at 6 s: it has seen
    // `beforeunload`. (The isolate's clock starts at its boot: the 5 s left over are
    // for a loaded machine to boot it and hand it the request.)
    const slow = gateway.burn(0, 20_000);
    const short = gateway.burn(0, 7_000);
    const [retired] = await eventually(
      "the isolate to be retired at half its wall clock",
      async () => {
        const isolates = await gateway.isolates();
        return isolates.some((i) => i.retired === "retired: wall clock") ? isolates : undefined;
      },
    );
    const next = await gateway.burn(0);
    assert.equal(next.status, 200);
    assert.notEqual(next.body.pid, retired.pid, "the retired isolate takes nothing new");
    const shortAnswer = await short;
    assert.equal(shortAnswer.status, 200, "a retired isolate finishes its requests");
    assert.equal(shortAnswer.body.pid, retired.pid);
    assert.deepEqual(shortAnswer.body.reasons, ["wall_clock"], "beforeunload's detail.reason");
    const answer = await slow;
    assert.equal(answer.status, 546);
    assert.deepEqual(answer.body, WORKER_LIMIT_BODY);
    const line = await eventually("the killed isolate's line", async () => {
      return (await gateway.lines()).find((l) => l.pid === retired.pid);
    });
    assert.equal(line.reason, "WallClockTime");
    assert.equal(line.requests, 2);
    assert.ok(line.wall_ms >= 12_000, `wall_ms ${line.wall_ms}`);
  } finally {
    await gateway.stop();
  }
});

Deno.test("past the memory limit the request answers 546 and the isolate's line says Memory", async () => {
  const gateway = await startGateway({ EDGE_MEMORY_MB: "96" });
  try {
    const answer = await gateway.burn(0, 0, 400);
    assert.equal(answer.status, 546);
    assert.deepEqual(answer.body, WORKER_LIMIT_BODY);
    const [line] = await eventually("the isolate's line", async () => {
      const lines = await gateway.lines();
      return lines.length > 0 ? lines : undefined;
    });
    assert.equal(line.reason, "Memory");
    assert.equal(line.requests, 1);
  } finally {
    await gateway.stop();
  }
});

const searches = byTargetTable("firespring_searches")!;
const S = (s: string): AttributeValue => ({ S: s });
const N = (n: number): AttributeValue => ({ N: String(n) });

/** Writes `n` searches whose ids start with `p`; waits for the stream, then forgets the rows. */
async function seedSearches(sql: postgres.Sql, p: string, n: number): Promise<void> {
  const items = Array.from({ length: n }, (_, i) => ({
    search_id: S(`${p}${i}`),
    query: S(`q${i}`),
    count: N(i),
    searched_at: N(1770379200),
  }));
  await batchWrite(dynamo(searches.region), searches.sourceTable, items);
  // The stream delivers them too; the backfill must make the rows on its own.
  await eventually("the stream to deliver the items", async () => {
    const [r] = await sql`select count(*)::int as n from firespring_searches
                          where search_id like ${p + "%"}`;
    return r.n === n ? true : undefined;
  }, 180_000);
  await sql`delete from firespring_searches where search_id like ${p + "%"}`;
  await sql`delete from sync.observations where target_table = 'firespring_searches'
            and row_key ->> 'search_id' like ${p + "%"}`;
  await sql`delete from sync.tombstones where target_table = 'firespring_searches'
            and row_key ->> 'search_id' like ${p + "%"}`;
}

/** Every row whose id starts with `p` is exactly item i's: id, query and count. */
async function assertRows(sql: postgres.Sql, p: string, n: number): Promise<void> {
  const rows = await sql`select search_id, query, search_count::int as count
                         from firespring_searches where search_id like ${p + "%"}`;
  assert.equal(rows.length, n);
  for (const row of rows) {
    const i = Number(row.search_id.slice(p.length));
    assert.deepEqual({ query: row.query, count: row.count }, { query: `q${i}`, count: i });
  }
}

async function waitForJob(sql: postgres.Sql, id: string) {
  return await eventually(`backfill job ${id} to finish`, async () => {
    const [row] = await sql`select status, items_scanned, rows_written from sync.backfill_progress
                            where job_id = ${id}`;
    return row.status === "done" || row.status === "failed" ? row : undefined;
  }, 180_000);
}

// Before the backfill of thousands: its worker scans the whole searches table, three pages
// of 50 a run, so it runs on the few hundred items of its own rather than on 10,000 more.
Deno.test("a tiny CPU budget hands on mid-segment: nothing lost, nothing repeated", async () => {
  const sql = connectDb();
  const p = `tiny-${crypto.randomUUID().slice(0, 8)}-`;
  const n = 500;
  try {
    await seedSearches(sql, p, n);
    const total = await scanCount(searches.targetTable);
    const [job] = await sql`select sync.start_backfill(${searches.sourceTable}, 1, false) as id`;
    await sql`update sync.backfill_jobs set page_size = 50 where id = ${job.id}`;
    const lines: string[] = [];
    let wakes = 0;
    let handOns = 0;
    // Each run's isolate "uses" 100 ms per page: a budget of 250 ms allows three pages.
    for (let run = 0; run < 200; run++) {
      let pages = 0;
      const cpu: CpuMeter = {
        source: "estimate",
        usedMs: () => 100 * pages,
        measure: (step) => {
          pages++;
          return step();
        },
      };
      const result = await runWorker({
        sql,
        dynamo: (region) => dynamo(region),
        wake: () => {
          wakes++;
          return Promise.resolve();
        },
        cpu,
        cpuBudgetMs: 250,
        wallBudgetMs: 60_000,
        maxConcurrent: 1,
        maxRcuPerSecond: 100_000,
        log: (line) => lines.push(line),
      }, `tiny-budget-${run}`);
      if (result.stoppedBy === "budget") {
        handOns++;
        assert.equal(result.pages, 3, "three pages, then the budget is spent");
      }
      const [state] = await sql`select status from sync.backfill_jobs where id = ${job.id}`;
      if (state.status !== "running" && state.status !== "pending") break;
    }
    const result = await waitForJob(sql, job.id);
    assert.equal(result.status, "done");
    assert.ok(handOns >= 2, `handed on ${handOns} times`);
    assert.ok(wakes >= handOns, "each hand-on wakes the next worker");
    assert.equal(Number(result.items_scanned), total, "every item counted once");
    assert.ok(lines.some((l) => /budget spent \(isolate CPU 300 ms\), handed on/.test(l)));
    assert.ok(lines.some((l) => /claimed \(resuming from its checkpoint\)/.test(l)));
    await assertRows(sql, p, n);
  } finally {
    await sql.end();
  }
});

Deno.test("under the hosted limits, a backfill of thousands of items is never killed for CPU", async () => {
  const sql = connectDb();
  const p = `lim-${crypto.randomUUID().slice(0, 8)}-`;
  // Enough that the import-worker's isolates pass the soft limit and hand on.
  const n = 10_000;
  const log = join(LOG_DIR, "edge-isolates.jsonl");
  try {
    await seedSearches(sql, p, n);
    const since = new Date().toISOString();
    const [job] = await sql`select sync.start_backfill(${searches.sourceTable}, 4, false) as id`;
    await sql`update sync.backfill_jobs set page_size = 100 where id = ${job.id}`;
    await sql`select sync.wake_import_worker()`;
    const result = await waitForJob(sql, job.id);
    assert.equal(result.status, "done");
    assert.equal(
      Number(result.items_scanned),
      await scanCount(searches.targetTable),
      "no page lost or repeated",
    );
    await assertRows(sql, p, n);
    const killed = (await readLines(log)).filter((l) =>
      l.function === "import-worker" && l.ended_at >= since && l.reason === "CPUTime"
    );
    assert.deepEqual(killed, [], "no import-worker isolate was killed for CPU");
    // The limits were in play: an isolate was retired at the soft limit, and ended
    // when its work was done.
    await eventually("an import-worker isolate retired for CPU to end", async () => {
      return (await readLines(log)).find((l) =>
        l.function === "import-worker" && l.ended_at >= since &&
        l.reason === "retired: cpu soft limit"
      );
    });
  } finally {
    await sql.end();
  }
});
