import assert from "node:assert/strict";
import type postgres from "postgres";
import { TABLES } from "../functions-shared/table_registry.ts";
import { stageLine, StartBoard } from "./start_board.ts";

const visitors = TABLES.find((t) => t.targetTable === "firespring_visitors")!;
const actions = TABLES.find((t) => t.targetTable === "firespring_actions")!;

/** A stand-in for postgres.js that answers every query with the rows `answer` gives. */
function fakeSql(answer: () => unknown[]) {
  return ((_strings: TemplateStringsArray, ..._values: unknown[]) =>
    Promise.resolve(answer())) as unknown as postgres.Sql;
}

Deno.test("a table's line follows it from loading to its verdict", () => {
  assert.match(
    stageLine(visitors, { stage: "loading", written: 6_902, total: 13_804 }, 13_804),
    /^firespring_visitors +\[#{12}-{12}\] +6,902\/13,804 +items loading into DynamoDB Local$/,
  );
  assert.match(
    stageLine(visitors, { stage: "backfilling", jobId: "7" }, 13_804),
    /backfill job 7 queued$/,
  );
  assert.match(
    stageLine(visitors, {
      stage: "backfilling",
      jobId: "7",
      progress: {
        job_id: "7",
        target_table: "firespring_visitors",
        status: "running",
        segments_done: 1,
        total_segments: 4,
        items_scanned: 3_451,
        rows_written: 600,
        items_per_second: 250,
      },
    }, 13_804),
    /3,451\/13,804 +items .* segments 1\/4 +ETA 42s$/,
  );
  assert.match(stageLine(visitors, { stage: "validated", match: false }, 0), /MISMATCH$/);
});

Deno.test("the board settles a followed job once it has finished, with its error", async () => {
  let rows: unknown[] = [];
  const written: string[] = [];
  const board = new StartBoard(fakeSql(() => rows), [visitors, actions], {}, {
    tty: false,
    write: (text) => written.push(text),
    everyMs: 60_000,
  });
  const ended = board.follow("firespring_visitors", "7");
  let settled = false;
  ended.then(() => settled = true);
  const row = (status: string, error: string | null) => ({
    job_id: "7",
    target_table: "firespring_visitors",
    status,
    segments_done: 0,
    total_segments: 4,
    items_scanned: 10,
    rows_written: 10,
    items_per_second: 5,
    error,
  });
  rows = [row("running", null)];
  await board.tick();
  await Promise.resolve();
  assert.equal(settled, false);
  rows = [row("failed", "firespring_visitors: session_id s-1: bad timestamp")];
  await board.tick();
  assert.deepEqual(await ended, {
    status: "failed",
    error: "firespring_visitors: session_id s-1: bad timestamp",
  });
  // Printed once (the first tick), then not again within everyMs; stop() forces it.
  assert.equal(written.length, 1);
  board.live("drained");
  await board.stop();
  assert.equal(written.length, 2);
  assert.match(written[1], /firespring_actions +waiting to load\nlive changes: drained\n/);
});

Deno.test("progress that cannot be read is said once and tried again; a minute of it fails the jobs, named", async () => {
  let now = 0;
  let down = true;
  const written: string[] = [];
  const sql =
    ((..._args: unknown[]) =>
      down
        ? Promise.reject(new Error("write CONNECTION_CLOSED 127.0.0.1:54322"))
        : Promise.resolve([])) as unknown as postgres.Sql;
  const board = new StartBoard(sql, [visitors], {}, {
    tty: false,
    write: (text) => written.push(text),
    everyMs: 0,
    now: () => now,
  });
  const ended = board.follow("firespring_visitors", "7");
  const seen: { outcome?: unknown } = {};
  ended.then((end) => seen.outcome = end, (error) => seen.outcome = error);
  const outcome = () => seen.outcome;
  await board.round();
  now = 30_000;
  await board.round();
  // A blip: read again, the job is followed still.
  down = false;
  await board.round();
  down = true;
  now = 40_000;
  await board.round();
  now = 99_000;
  await board.round();
  assert.equal(outcome(), undefined, "59 s of failing reads: still followed");
  now = 100_000;
  await board.round();
  await Promise.resolve();
  const failed = outcome();
  assert.ok(failed instanceof Error);
  assert.equal(
    failed.message,
    "backfill job 7 of firespring_visitors: its progress (sync.backfill_progress) could not " +
      "be read for 60 s: write CONNECTION_CLOSED 127.0.0.1:54322",
  );
  const said = written.filter((text) => text.includes("could not be read ("));
  assert.equal(said.length, 2, "said once per spell of failures");
  assert.ok(written.some((text) => text.includes("live changes:")), "drawn all the same");
});

Deno.test("a backfill no worker works on is told above the board, once", async () => {
  const written: string[] = [];
  const row = {
    job_id: "7",
    target_table: "firespring_visitors",
    status: "pending",
    segments_done: 0,
    total_segments: 4,
    items_scanned: 0,
    rows_written: 0,
    items_per_second: 0,
    last_worked_at: new Date(0).toISOString(),
    error: null,
  };
  const board = new StartBoard(fakeSql(() => [row]), [visitors], {}, {
    tty: true,
    write: (text) => written.push(text),
    everyMs: 0,
    now: () => 6 * 60_000,
  });
  board.follow("firespring_visitors", "7");
  board.draw();
  await board.tick();
  await board.tick();
  const told = written.filter((text) => text.includes("no worker has worked on it"));
  assert.equal(told.length, 1);
  assert.match(
    told[0],
    /^backfill job 7 of firespring_visitors: no worker has worked on it for 6 minutes/,
  );
  // On a terminal the note clears the board first, so the next redraw does not hide it.
  const at = written.indexOf(told[0]);
  assert.match(written[at - 1], new RegExp(String.raw`^\u001b\[\d+A\u001b\[J$`));
});
