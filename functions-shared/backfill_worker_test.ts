/**
 * The import-worker's loop with a fake database (claims, checkpoints, releases) and a
 * fake DynamoDB (pages, a missing table, a failing Scan): what it sends, in which
 * transaction, how it resumes, and what a lost lease, a poison item or a Scan error does.
 * Budgets, pacing and throttling are in backfill_worker_budget_test.ts.
 */

import assert from "node:assert/strict";
import { runWorker, SWEEP_IDLE_SECONDS } from "./backfill_worker.ts";
import { awsError, type fakeCpuMeter, fakeDynamo } from "./testing_fakes.ts";
import {
  backfillDb,
  checkpointArgs,
  claim,
  item,
  keyOf,
  pagedDynamo,
  SEGMENTS,
  twoPages,
  WHERE,
  workerDeps,
} from "./backfill_worker_fakes.ts";

Deno.test("a claimed segment is scanned page by page, each page written with its checkpoint in one statement", async () => {
  // The ledger's turns: the claim's, then the first page's statement books the second's.
  const db = backfillDb([claim()], {
    turns: [{ wait_ms: 0, units: 257 }, { wait_ms: 0, units: 1 }],
  });
  const dynamo = pagedDynamo(twoPages);
  const { deps, lines } = workerDeps(db, dynamo);
  const result = await runWorker(deps, "worker-a");
  assert.deepEqual(result, {
    segmentsFinished: 1,
    pages: 2,
    items: 3,
    rows: 3,
    stoppedBy: "no work",
    resumed: 0,
  });
  // The table's read budget (its first read's turn), then the worker, and no run (a
  // backfill's segment, not a validation's).
  assert.deepEqual(db.matching("sync.claim_segment").map((s) => s.values), [
    [1_000_000, "worker-a", null],
    [1_000_000, "worker-a", null],
  ]);
  assert.deepEqual(dynamo.regions, ["us-east-1", "us-east-1"]);
  assert.equal(dynamo.sent.length, 2);
  for (const [i, { input }] of dynamo.sent.entries()) {
    assert.equal(input.TableName, SEGMENTS);
    assert.equal(input.Segment, 1);
    assert.equal(input.TotalSegments, 4);
    assert.equal(input.Limit, 2);
    assert.equal(input.ConsistentRead, true, "a consistent Scan");
    assert.equal(input.ReturnConsumedCapacity, "TOTAL");
    assert.deepEqual(input.ExclusiveStartKey, i === 0 ? undefined : keyOf("b"));
  }
  // Each page: its merge and its checkpoint in ONE statement (its own transaction), the
  // checkpoint counting the rows the merge wrote.
  const pages = db.matching("sync.checkpoint_segment");
  assert.equal(pages.length, 2);
  for (const page of pages) {
    // The merge after the wait for the table's lock, at most 30 s (sync.wait_for_merge_lock).
    assert.match(
      page.text,
      /\(select sync\.wait_for_merge_lock\(\$6\) as target\) l cross join lateral sync\.merge_changes\(l\.target, \$7::text::jsonb\)/,
    );
    assert.match(page.text, /\(select applied from merged\)/);
    assert.equal(page.tx, 0, "no explicit transaction: one statement is one");
  }
  assert.deepEqual(db.transactions, { begun: 0, committed: 0, rolledBack: 0 });
  assert.deepEqual(pages.map((s) => [...s.values.slice(0, 6), s.values[7]]), [
    ["7", 1, "worker-a", JSON.stringify(keyOf("b")), 2, "firespring_segments", false],
    ["7", 1, "worker-a", null, 1, "firespring_segments", true],
  ]);
  const changes = JSON.parse(String(pages[0].values[6])) as {
    op: string;
    row: Record<string, unknown>;
    source: string;
    seq: unknown;
    changed_at: string;
  }[];
  assert.deepEqual(changes.map((c) => [c.op, c.row.segment_id, c.row.member_count, c.source]), [
    ["upsert", "a", 5, "backfill"],
    ["upsert", "b", 5, "backfill"],
  ]);
  assert.equal(changes[0].seq, null);
  assert.ok(!Number.isNaN(Date.parse(changes[0].changed_at)), "stamped with the read time");
  assert.deepEqual(lines, [], "a segment read through in one run logs no line of its own");
});

Deno.test("a claim with a checkpoint resumes from it", async () => {
  const db = backfillDb([claim({ exclusive_start_key: keyOf("b") })]);
  const dynamo = pagedDynamo(twoPages);
  const { deps, lines } = workerDeps(db, dynamo);
  const result = await runWorker(deps, "worker-a");
  assert.equal(dynamo.sent.length, 1);
  assert.deepEqual(dynamo.sent[0].input.ExclusiveStartKey, keyOf("b"));
  assert.equal(result.items, 1);
  assert.equal(result.segmentsFinished, 1);
  assert.equal(result.resumed, 1, "counted: a checkpoint another request left is routine");
  assert.deepEqual(lines, []);
});

Deno.test("a key with U+0000 is checkpointed in a form jsonb holds, and a claim resumes from it", async () => {
  const nul = { segment_id: { S: "b\u0000" } };
  const db = backfillDb([claim()]);
  const dynamo = pagedDynamo({
    "null": { Items: [item("a")], LastEvaluatedKey: nul },
    [JSON.stringify(nul)]: { Items: [item("c")] },
  });
  const { deps } = workerDeps(db, dynamo);
  await runWorker(deps, "worker-a");
  const [first] = db.matching("sync.checkpoint_segment").map(checkpointArgs);
  const stored = String(first[3]);
  assert.ok(!stored.includes("\\u0000"), `no U+0000 escape for jsonb to refuse: ${stored}`);
  assert.deepEqual(dynamo.sent[1].input.ExclusiveStartKey, nul, "the next page starts at the key");
  // A later request's claim of that checkpoint starts at the same key.
  const resumed = pagedDynamo({ [JSON.stringify(nul)]: { Items: [item("c")] } });
  const again = workerDeps(
    backfillDb([claim({ exclusive_start_key: JSON.parse(stored) })]),
    resumed,
  );
  await runWorker(again.deps, "worker-b");
  assert.deepEqual(resumed.sent[0].input.ExclusiveStartKey, nul);
});

Deno.test("a claim taken over from a worker that died says so, naming its segment", async () => {
  const db = backfillDb([
    claim({ exclusive_start_key: keyOf("b"), taken_over: true }),
    claim({ segment: 2, taken_over: true }),
  ]);
  const { deps, lines } = workerDeps(db, pagedDynamo(twoPages));
  const result = await runWorker(deps, "worker-a");
  assert.equal(result.resumed, 0, "not counted with the routine resumes");
  assert.deepEqual(lines.filter((l) => /taken over/.test(l)), [
    `${WHERE}: taken over: its lease ran out (its worker was stopped or killed mid-page); resuming from its checkpoint`,
    `${
      WHERE.replace("segment 1/4", "segment 2/4")
    }: taken over: its lease ran out (its worker was stopped or killed mid-page); starting from its beginning`,
  ]);
});

Deno.test("each claim wakes another worker only while segments wait and fewer than maxConcurrent run", async () => {
  const cases: [boolean, number, number][] = [[true, 1, 1], [true, 4, 0], [false, 0, 0]];
  for (const [pending, running, expected] of cases) {
    const db = backfillDb([claim()], { pending, running });
    const { deps, woken } = workerDeps(db, pagedDynamo(twoPages));
    await runWorker(deps, "worker-a");
    assert.equal(woken.count, expected, `pending ${pending}, running ${running}`);
  }
});

Deno.test("a lost lease (the checkpoint's SY001) rolls the page back and the worker goes on", async () => {
  let checkpoints = 0;
  const db = backfillDb([claim(), claim({ segment: 2 })], {
    checkpoint: () => {
      if (checkpoints++ === 0) {
        throw Object.assign(
          new Error("backfill job 7 segment 1: worker worker-a no longer holds the lease"),
          { code: "SY001" },
        );
      }
      return [];
    },
  });
  const dynamo = pagedDynamo({ "null": { Items: [item("a")] } });
  const { deps, lines } = workerDeps(db, dynamo);
  const result = await runWorker(deps, "worker-a");
  assert.deepEqual(result, {
    segmentsFinished: 1,
    pages: 1,
    items: 1,
    rows: 1,
    stoppedBy: "no work",
    resumed: 0,
  });
  // The refused checkpoint is the statement that carried the page's merge: one statement,
  // so the merge's rows roll back with it (tests/backfill_page_test.ts shows it in Postgres).
  const pages = db.matching("sync.checkpoint_segment");
  assert.equal(pages.length, 2);
  assert.ok(pages.every((p) => p.text.includes("sync.merge_changes")));
  assert.deepEqual(db.transactions, { begun: 0, committed: 0, rolledBack: 0 });
  assert.deepEqual(dynamo.sent.map((c) => c.input.Segment), [1, 2]);
  assert.equal(db.matching("sync.claim_segment").length, 3);
  assert.equal(db.matching("sync.release_segment").length, 0, "the lease is another's now");
  assert.ok(
    lines.includes(
      `${WHERE}: lease lost to another worker; its page was not written`,
    ),
    lines.join("\n"),
  );
});

Deno.test("a page of a job no longer running (the checkpoint's SY002) is not written, and its segment stops", async () => {
  const refused = `backfill job 7 segment 1 of ${SEGMENTS}: the job is cancelled, ` +
    "so this page was not written; the segment stops";
  const db = backfillDb([claim()], {
    checkpoint: () => {
      throw Object.assign(new Error(refused), {
        code: "SY002",
        where: "PL/pgSQL function sync.checkpoint_segment(bigint,integer,text,jsonb,integer," +
          "integer,boolean) line 40 at RAISE",
      });
    },
  });
  const dynamo = pagedDynamo(twoPages);
  const { deps, lines } = workerDeps(db, dynamo);
  const result = await runWorker(deps, "worker-a");
  assert.deepEqual(result, {
    segmentsFinished: 0,
    pages: 0,
    items: 0,
    rows: 0,
    stoppedBy: "no work",
    resumed: 0,
  });
  assert.equal(dynamo.sent.length, 1, "no page after the refused one");
  assert.equal(db.matching("sync.release_segment").length, 0, "nothing to give back");
  assert.equal(db.matching("sync.claim_segment").length, 2, "the worker asks for other work");
  assert.ok(lines.includes(refused), lines.join("\n"));
});

Deno.test("a missing table fails its segment with a message naming the table and region", async () => {
  const lead = "Lead-sqiqbtbugvfabolqwdt4rz3dla-NONE";
  const db = backfillDb([
    claim({ source_table: lead, target_table: "mmp_toledo_leads", region: "us-east-2" }),
  ]);
  const dynamo = fakeDynamo(() => {
    throw awsError("ResourceNotFoundException", "Requested resource not found");
  });
  const { deps, lines } = workerDeps(db, dynamo);
  const result = await runWorker(deps, "worker-a");
  assert.equal(dynamo.sent.length, 1, "not retried");
  assert.deepEqual(dynamo.regions, ["us-east-2"]);
  assert.deepEqual(db.matching("sync.fail_segment").map((s) => s.values), [
    ["7", 1, "worker-a", `DynamoDB table ${lead} does not exist in us-east-2`],
  ]);
  assert.equal(db.matching("sync.claim_segment").length, 2, "the worker goes on");
  assert.equal(result.segmentsFinished, 0);
  assert.equal(result.stoppedBy, "no work");
  assert.equal(db.matching("sync.checkpoint_segment").length, 0);
  assert.ok(
    lines.includes(`backfill job 7 segment 1/4 of ${lead}: the table does not exist; job failed`),
  );
});

Deno.test("a poison item becomes a dead letter and its page still checkpoints", async () => {
  const db = backfillDb([claim()]);
  const dynamo = pagedDynamo({ "null": { Items: [item("a"), item("p", "abc")] } });
  const { deps, lines } = workerDeps(db, dynamo);
  const result = await runWorker(deps, "worker-a");
  assert.equal(result.items, 2);
  assert.equal(result.rows, 1);
  assert.equal(result.segmentsFinished, 1);
  const [letters] = db.matching("insert into sync.dead_letters");
  const [checkpoint] = db.matching("sync.checkpoint_segment");
  assert.equal(letters.tx, checkpoint.tx, "the dead letter is written with the page");
  // The checkpoint, then the read turn in the same statement (the read cost 1 unit, the
  // segment is done: no next turn).
  assert.ok(checkpoint.values[7] instanceof Date, "the page's stamp, its segment's earliest");
  assert.deepEqual(checkpoint.values.toSpliced(7, 1), [
    "7",
    1,
    "worker-a",
    null,
    2,
    1,
    true,
    "7",
    1_000_000,
    1,
    0,
    false,
    true,
    true,
  ]);
  const rows = JSON.parse(String(letters.values[0])) as Record<string, unknown>[];
  assert.equal(rows.length, 1);
  assert.equal(rows[0].source_table, SEGMENTS);
  assert.equal(rows[0].target_table, "firespring_segments");
  assert.deepEqual(rows[0].row_key, { segment_id: "p" });
  assert.equal(rows[0].position_source, "backfill");
  assert.match(String(rows[0].reason), /^firespring-backdoor-segments-dev \[segment_id="p"\]: /);
  assert.match(String(rows[0].reason), /attribute value/);
  const merged = JSON.parse(String(db.matching("sync.merge_changes")[0].values[1]));
  assert.deepEqual(merged.map((c: { row: { segment_id: string } }) => c.row.segment_id), ["a"]);
  assert.ok(
    lines.includes(`${WHERE}: dead letter: ${rows[0].reason}`),
    "the letter's table, key and cause, once committed",
  );
});

Deno.test("any other Scan error is counted on the segment, which is released, and propagates, even if the release fails", async () => {
  for (const releaseFails of [false, true]) {
    const db = backfillDb([claim()], {
      release: () => {
        if (releaseFails) throw new Error("connection closed");
        return [];
      },
    });
    const dynamo = fakeDynamo(() => {
      throw awsError("ValidationException", "ExclusiveStartKey is invalid");
    });
    const { deps, lines } = workerDeps(db, dynamo);
    await assert.rejects(runWorker(deps, "worker-a"), /ExclusiveStartKey is invalid/);
    assert.equal(dynamo.sent.length, 1, "not retried");
    assert.deepEqual(db.matching("sync.note_failed_attempt").map((s) => s.values), [
      ["7", 1, "worker-a", `${WHERE}: ValidationException: ExclusiveStartKey is invalid`],
    ]);
    assert.deepEqual(db.matching("sync.release_segment").map((s) => s.values.slice(0, 3)), [
      ["7", 1, "worker-a"],
    ]);
    assert.equal(
      lines.at(-1),
      `${WHERE}: ValidationException: ExclusiveStartKey is invalid; released for another worker`,
    );
  }
});

Deno.test("a page that waited 30 s for its table's merge lock is given back uncounted, the lock named", async () => {
  const timedOut = Object.assign(new Error("canceling statement due to lock timeout"), {
    code: "55P03",
    where: 'SQL function "wait_for_merge_lock" statement 1',
  });
  const db = backfillDb([claim()], {
    checkpoint: () => {
      throw timedOut;
    },
  });
  const { deps, lines } = workerDeps(db, pagedDynamo(twoPages));
  await assert.rejects(runWorker(deps, "worker-a"), /merge lock of firespring_segments/);
  assert.equal(db.matching("sync.note_failed_attempt").length, 0, "not counted");
  assert.equal(db.matching("sync.release_segment").length, 1, "given back");
  assert.equal(
    lines.at(-1),
    `${WHERE}: the merge lock of firespring_segments was held by another transaction for 30 s ` +
      "(an export's chunk or a retention purge of the table): the page is given back and " +
      "read again later; released for another worker",
  );
});

Deno.test("a failure that says retry later (the database or its pooler unavailable) is not counted as a failed attempt", async () => {
  const checkout = Object.assign(
    new Error("(ECHECKOUTTIMEOUT) unable to check out connection from the pool due to timeout"),
    { code: "XX000" },
  );
  const db = backfillDb([claim()], {
    checkpoint: () => {
      throw checkout;
    },
  });
  const { deps } = workerDeps(db, pagedDynamo(twoPages));
  await assert.rejects(runWorker(deps, "worker-a"), /ECHECKOUTTIMEOUT/);
  assert.equal(db.matching("sync.note_failed_attempt").length, 0, "not counted");
  assert.equal(db.matching("sync.release_segment").length, 1, "given back");
  // Nor a statement that lost to another: it passes by itself. A statement timeout does
  // not (a page too big for it times out every time): it is counted.
  for (const [code, counted] of [["40P01", 0], ["40001", 0], ["55P03", 0], ["57014", 1]] as const) {
    const lost = Object.assign(new Error(`statement failed (${code})`), { code });
    const db = backfillDb([claim()], {
      checkpoint: () => {
        throw lost;
      },
    });
    const { deps } = workerDeps(db, pagedDynamo(twoPages));
    await assert.rejects(runWorker(deps, "worker-a"), new RegExp(code));
    assert.equal(db.matching("sync.note_failed_attempt").length, counted, code);
  }
});

Deno.test("an error on a segment's last attempt fails its job, naming the table, the segment and the cause", async () => {
  const db = backfillDb([claim()], { lastAttempt: true });
  const dynamo = fakeDynamo(() => {
    throw awsError("AccessDeniedException", "not authorized to perform: dynamodb:Scan");
  });
  const { deps, lines } = workerDeps(db, dynamo);
  await assert.rejects(runWorker(deps, "worker-a"), /not authorized/);
  assert.equal(db.matching("sync.release_segment").length, 0, "failed, not given back");
  assert.equal(
    lines.at(-1),
    `${WHERE}: AccessDeniedException: not authorized to perform: dynamodb:Scan; its job failed: every attempt in a row ended so`,
  );
});

Deno.test("a page Postgres refuses as a whole is written again the careful way, in one transaction with its checkpoint", async () => {
  const refused = Object.assign(new Error("invalid input syntax"), { code: "22P02" });
  const db = backfillDb([claim()], {
    checkpoint: (s) => {
      if (s.text.includes("sync.merge_changes")) throw refused;
      return [];
    },
  });
  const dynamo = pagedDynamo({ "null": { Items: [item("a"), item("b")] } });
  const { deps } = workerDeps(db, dynamo);
  const steps = (deps.cpu as ReturnType<typeof fakeCpuMeter>).steps;
  const result = await runWorker(deps, "worker-a");
  assert.equal(result.rows, 2);
  assert.equal(result.segmentsFinished, 1);
  assert.equal(
    (deps.cpu as ReturnType<typeof fakeCpuMeter>).steps - steps,
    2,
    "the page's mapping, and the careful merge's encoding, measured",
  );
  const [once, careful] = db.matching("sync.checkpoint_segment");
  assert.ok(once.text.includes("sync.merge_changes"), "first the one statement");
  assert.equal(careful.tx, 1, "then a transaction");
  // The careful way takes the table's lock first, before the merges in their savepoints
  // (a halving's rollback keeps it), waiting at most 30 s.
  const lock = db.statements.findIndex((s) =>
    s.text.startsWith("select sync.wait_for_merge_lock(")
  );
  const firstMerge = db.statements.findIndex((s) => s.tx === 1 && s.text.includes("merge_changes"));
  assert.equal(db.statements[lock]?.tx, 1);
  assert.ok(lock < firstMerge, "the lock before the first merge");
  assert.deepEqual(checkpointArgs(careful), ["7", 1, "worker-a", null, 2, 2, true]);
  assert.equal(
    db.matching("savepoint").length + db.matching("sync.merge_changes").length >= 2,
    true,
  );
  assert.deepEqual(db.transactions, { begun: 1, committed: 1, rolledBack: 0 });
});

Deno.test("a page is stamped with its answer's Date less the round trip, whatever this clock says", async () => {
  const db = backfillDb([claim()]);
  // DynamoDB's Date is 10 s behind this clock; the exchange took 20 ms.
  const date = Math.floor(Date.now() / 1000) * 1000 - 10_000;
  const dynamo = fakeDynamo(() => ({
    Items: [item("a")],
    $metadata: { clock: { roundTripMs: 20, serverMs: date } },
  }));
  const { deps } = workerDeps(db, dynamo);
  const result = await runWorker(deps, "worker-a");
  assert.equal(result.rows, 1, "written: this clock orders nothing");
  const [checkpoint] = db.matching("sync.checkpoint_segment");
  const changes = JSON.parse(String(checkpoint.values[6])) as { changed_at: string }[];
  const stamp = new Date(date - 20).toISOString();
  assert.equal(changes[0].changed_at, stamp, "each row stamped on DynamoDB's clock");
  assert.equal(checkpoint.values[8], stamp, "and the segment's earliest stamp kept");
});

Deno.test("a run moves a waiting end on by one chunk before its Scans, not only once no segment is left", async () => {
  const db = backfillDb([claim()], { sweeps: ["41"] });
  const dynamo = fakeDynamo(() => ({ Items: [item("a")] }));
  const { deps } = workerDeps(db, dynamo);
  await runWorker(deps, "worker-a");
  const texts = db.statements.map((s) => s.text);
  const chunk = texts.findIndex((t) => t.includes("sync.sweep_unseen_chunk("));
  const claimed = texts.findIndex((t) => t.includes("sync.claim_segment("));
  assert.ok(chunk >= 0 && claimed > chunk, "the end's chunk, then the claim of a segment");
  assert.equal(dynamo.sent.length, 1, "and the segment is read");
  assert.equal(
    db.matching("sync.claim_sweep(")[0].values[1],
    SWEEP_IDLE_SECONDS,
    "only an end no chunk moved on for a while",
  );
});

Deno.test("with no segment left, a run sweeps the ends left to the workers, each chunk its own statement", async () => {
  const db = backfillDb([], { sweeps: ["41", "42"] });
  const dynamo = fakeDynamo(() => ({ Items: [] }));
  const { deps, lines } = workerDeps(db, dynamo);
  const result = await runWorker(deps, "worker-a");
  assert.equal(result.stoppedBy, "no work");
  assert.deepEqual(db.matching("sync.sweep_unseen_chunk(").map((s) => s.values[0]), ["41", "42"]);
  assert.equal(db.matching("sync.claim_sweep(").length, 3, "until none waits");
  assert.deepEqual(
    db.matching("sync.sweep_unseen_chunk(").map((s) => s.values.at(-1)),
    ["worker-a", "worker-a"],
    "each chunk under the run's lease",
  );
  assert.ok(lines.some((l) => l.startsWith(`backfill job 41 of ${SEGMENTS}: its end is over`)));
});
