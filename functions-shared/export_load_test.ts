import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Writable } from "node:stream";
import type postgres from "postgres";
import { TRANSIENT_ATTEMPTS, transientLoadFailure } from "./export_failures.ts";
import { ExportReadError } from "./export_items.ts";
import {
  type ExportFileClaim,
  type ExportLoadDeps,
  FILE_READ_RETRIES,
  loadExportFile,
} from "./export_file_load.ts";
import { loadExportJob } from "./export_load.ts";
import { RunGate } from "./run_gate.ts";
import { fakeCpuMeter, fakeSql, type Statement } from "./testing_fakes.ts";

const fileOf = (segment: number): ExportFileClaim => ({
  segment,
  data_key: `AWSDynamoDB/01/data/${segment}.json.gz`,
  item_count: 2,
  md5: "md5",
  next_line: 0,
  source_table: "firespring-backdoor-segments-dev",
  target_table: "firespring_segments",
  page_size: 2,
});

/** The checkpoint's refusal of a page of a job that is over, with its context. */
const jobOver = (message: string) =>
  Object.assign(new Error(message), {
    code: "SY002",
    where: "PL/pgSQL function sync.checkpoint_segment(bigint,integer,text,jsonb,integer," +
      "integer,boolean) line 40 at RAISE",
  });

/**
 * A database that hands out `files` in order, then nothing, with no file of the job left
 * in flight; this worker holds the lease of the segments in `held` when it fails one;
 * the job's last status is `ended`; `first` sees each statement first (and may throw).
 */
function jobDb(
  files: ExportFileClaim[],
  held: number[],
  ended = "done",
  first: (s: Statement) => void = () => {},
) {
  return fakeSql((s) => {
    first(s);
    if (s.text.includes("sync.claim_export_file")) return files.length ? [files.shift()] : [];
    if (s.text.includes("count(*)::int as n")) return [{ n: 0 }];
    if (s.text.includes("as mine")) return [{ mine: held.includes(s.values[2] as number) }];
    if (s.text.includes("sync.fail_segment")) return [];
    if (s.text.includes("sync.release_segment")) return [];
    if (s.text.includes("sync.sweep_unseen_chunk(")) return [{ over: true }];
    if (s.text.includes("select status, error from sync.backfill_jobs")) {
      return [{ status: ended, error: null }];
    }
    return undefined;
  });
}

/** Loads job 7 with one worker; opening a file fails with `errors[its segment]`. */
function load(db: ReturnType<typeof jobDb>, errors: Record<number, Error>) {
  const lines: string[] = [];
  const done = loadExportJob("7", 1, "loader", {
    sql: db.sql,
    open: (key) => Promise.reject(errors[Number(key.match(/(\d+)\.json/)![1])]),
    readAt: new Date("2026-11-29T00:00:00Z"),
    cpu: fakeCpuMeter(),
    log: (line) => lines.push(line),
    sleep: () => Promise.resolve(),
  });
  return { done, lines };
}

const left = (segment: number, message: string) =>
  `export backfill job 7 of firespring-backdoor-segments-dev: loader-0 left file ${segment} ` +
  `(AWSDynamoDB/01/data/${segment}.json.gz): ${message}`;
/** The error a failed load throws: the file's, with the job, the table and the file named. */
const causedBy = (cause: Error) => (error: Error) => {
  assert.equal(error.cause, cause, error.message);
  assert.match(error.message, /^export backfill job 7 of firespring-backdoor-segments-dev: /);
  return true;
};
const failedSegments = (db: ReturnType<typeof jobDb>) =>
  db.matching("sync.fail_segment").map((s) => s.values[1]);

Deno.test("a worker whose checkpoint is refused leaves the file, fails nothing and claims the next", async () => {
  for (
    const refusal of [
      Object.assign(
        new Error("backfill job 7 segment 3: worker loader-0 no longer holds the lease"),
        {
          code: "SY001",
        },
      ),
      jobOver("backfill job 7 segment 3 of firespring-backdoor-segments-dev: the job is failed"),
    ]
  ) {
    const db = jobDb([fileOf(3), fileOf(4)], [4]);
    const nextFile = new Error("file 4 opened");
    const { done, lines } = load(db, { 3: refusal, 4: nextFile });
    await assert.rejects(done, causedBy(nextFile), `${refusal.message}: went on to file 4`);
    assert.deepEqual(failedSegments(db), [4], "file 3 failed nothing");
    assert.deepEqual(
      db.matching("sync.release_segment")[0].values,
      ["7", 3, "loader-0"],
      "and is given back, if still its own, to be read again from its checkpoint",
    );
    assert.equal(lines[0], left(3, refusal.message));
  }
});

Deno.test("a file taken up from its checkpoint renews its lease while it reads back to it, and leaves the file once the lease is another's", async () => {
  const lines = ["a", "b"].map((id) => JSON.stringify({ Item: { segment_id: { S: id } } }) + "\n");
  const gzipped = new Blob(lines).stream().pipeThrough(new CompressionStream("gzip"));
  const bytes = new Uint8Array(await new Response(gzipped).arrayBuffer());
  const lost = Object.assign(
    new Error("backfill job 7 segment 3: worker loader-0 no longer holds the lease"),
    {
      code: "SY001",
    },
  );
  const db = jobDb([{ ...fileOf(3), next_line: 1 }], [], "done", (s) => {
    if (s.text.includes("sync.renew_segment")) throw lost;
  });
  const log: string[] = [];
  await loadExportJob("7", 1, "loader", {
    sql: db.sql,
    open: () => Promise.resolve(new Blob([bytes]).stream()),
    readAt: new Date("2026-11-29T00:00:00Z"),
    cpu: fakeCpuMeter(),
    log: (line) => log.push(line),
    sleep: () => Promise.resolve(),
    skipChars: 1,
  });
  const [renew] = db.matching("sync.renew_segment");
  assert.deepEqual(renew.values, ["7", 3, "loader-0"]);
  assert.equal(renew.tx, 0, "before any chunk's transaction holds a connection");
  assert.equal(db.transactions.begun, 0);
  assert.deepEqual(failedSegments(db), [], "nothing failed");
  assert.equal(log[0], left(3, lost.message));
});

Deno.test("workers sharing file slots claim a file only once they have a place, and hold it until the file is left", async () => {
  let loading = 0;
  let most = 0;
  const db = jobDb([fileOf(3), fileOf(4), fileOf(5)], [], "done", (s) => {
    if (s.text.includes("sync.release_segment")) loading--;
  });
  const slots = new RunGate(1);
  await loadExportJob("7", 3, "loader", {
    sql: db.sql,
    open: async (key) => {
      most = Math.max(most, ++loading);
      await new Promise((resolve) => setTimeout(resolve, 5)); // others would start meanwhile
      throw new Error(`${key} is not there`);
    },
    readAt: new Date("2026-11-29T00:00:00Z"),
    cpu: fakeCpuMeter(),
    sleep: () => Promise.resolve(),
    fileSlots: slots,
  });
  assert.equal(db.matching("sync.release_segment").length, 3, "each file tried, and left");
  assert.equal(most, 1, "three workers, one place: one file at a time");
  assert.equal(slots.active, 0, "every place given back");
});

Deno.test("a file that fails while its worker holds the lease fails its segment and the job, and is thrown naming the job, the table and the file", async () => {
  const db = jobDb([fileOf(3)], [3]);
  // S3's own error names no file.
  const gone = Object.assign(new Error("The specified key does not exist."), {
    name: "NoSuchKey",
  });
  const { done } = load(db, { 3: gone });
  const named = "export data file AWSDynamoDB/01/data/3.json.gz: The specified key does not exist.";
  await assert.rejects(done, (error: Error) => {
    assert.equal(
      error.message,
      `export backfill job 7 of firespring-backdoor-segments-dev: ${named}`,
    );
    assert.equal(error.cause, gone);
    return true;
  });
  const [failed] = db.matching("sync.fail_segment");
  assert.deepEqual(failed.values, ["7", 3, "loader-0", named]);
  assert.equal(db.transactions.committed, 1, "the lease read and the fail in one transaction");
});

Deno.test("a file of another table's items fails the job at its first item, naming the table, the file and the line", async () => {
  const db = jobDb([fileOf(4)], [4]);
  const line = JSON.stringify({ Item: { action_id: { S: "a-1" } } });
  const lines: string[] = [];
  const done = loadExportJob("7", 1, "loader", {
    sql: db.sql,
    open: () =>
      Promise.resolve(
        new Blob([`${line}\n${line}\n`]).stream().pipeThrough(new CompressionStream("gzip")),
      ),
    readAt: new Date("2026-11-29T00:00:00Z"),
    cpu: fakeCpuMeter(),
    log: (l) => lines.push(l),
    sleep: () => Promise.resolve(),
    // Pages one by one: the fake database takes no COPY; the item is refused as it is read.
    pageByPage: true,
  });
  const named = "export data file AWSDynamoDB/01/data/4.json.gz: line 1: the item has no key " +
    "attribute segment_id of type S (none): not an item of firespring-backdoor-segments-dev";
  await assert.rejects(done, (error: Error) => {
    assert.equal(
      error.message,
      `export backfill job 7 of firespring-backdoor-segments-dev: ${named}`,
    );
    return true;
  });
  assert.deepEqual(db.matching("sync.fail_segment")[0].values, ["7", 4, "loader-0", named]);
  assert.equal(db.matching("sync.merge_staged").length, 0, "nothing of the file merged");
});

Deno.test("a chunk that never ends is left once its lease lapsed, and the command ends", async () => {
  // The chunk's first statement never answers: a connection gone dead mid-chunk.
  const db = jobDb(
    [{ ...fileOf(5), lease_seconds: 0.03 }],
    [5],
    "done",
  );
  const stuck = fakeSql((s) => {
    if (s.text.includes("synchronous_commit")) return new Promise(() => {});
    if (s.text.includes("sync.renew_segment")) return [];
    return undefined;
  });
  const item = JSON.stringify({ Item: { segment_id: { S: "s-1" } } });
  const lines: string[] = [];
  const done = loadExportJob("7", 1, "loader", {
    // The claims and the job's end through the job's database, the chunk through one that hangs.
    sql: Object.assign((...args: Parameters<typeof db.sql>) => db.sql(...args), db.sql, {
      begin: stuck.sql.begin,
    }) as typeof db.sql,
    open: () =>
      Promise.resolve(
        new Blob([`${item}\n${item}\n`]).stream().pipeThrough(new CompressionStream("gzip")),
      ),
    readAt: new Date("2026-11-29T00:00:00Z"),
    cpu: fakeCpuMeter(),
    log: (l) => lines.push(l),
    sleep: () => Promise.resolve(),
    chunkHoldMaxMs: 30,
    stuckChunkGraceMs: 30,
  });
  await done;
  assert.ok(
    lines.some((l) =>
      /a write from line 0 did not end within .* minutes of its lease being left .*; the file is left/
        .test(l)
    ),
    lines.join("\n"),
  );
  assert.equal(db.matching("sync.fail_segment").length, 0, "nothing failed: the file is left");
  assert.equal(
    db.matching("sync.release_segment").length,
    0,
    "not given back: its lease lapses, a takeover counted",
  );
  const claims = db.matching("sync.claim_export_file").map((s) => s.values[1]);
  assert.deepEqual(claims, ["loader-0", "loader-0.1"], "the worker claims on under a new name");
});

Deno.test("a chunk of the job's end that lost to another statement is tried again", async () => {
  let sweeps = 0;
  const db = jobDb([], [], "done", (s) => {
    if (s.text.includes("sync.sweep_unseen_chunk(") && sweeps++ === 0) {
      throw Object.assign(new Error("canceling statement due to lock timeout"), {
        code: "55P03",
      });
    }
  });
  const { done, lines } = load(db, {});
  await done;
  assert.equal(sweeps, 2, "once refused, once done");
  assert.ok(
    lines.some((l) =>
      /a chunk of its end failed \(Error \(55P03\): canceling statement due to lock timeout\); trying again/
        .test(l)
    ),
    lines.join("\n"),
  );
});

Deno.test("a chunk of the job's end that met the database gone is tried again, then named", async () => {
  const dropped = () =>
    Object.assign(new Error("write CONNECTION_CLOSED 127.0.0.1:54322"), {
      code: "CONNECTION_CLOSED",
    });
  let sweeps = 0;
  const once = jobDb([], [], "done", (s) => {
    if (s.text.includes("sync.sweep_unseen_chunk(") && sweeps++ === 0) throw dropped();
  });
  await load(once, {}).done;
  assert.equal(sweeps, 2, "once dropped, once done");

  const always = jobDb([], [], "running", (s) => {
    if (s.text.includes("sync.sweep_unseen_chunk(")) throw dropped();
  });
  await assert.rejects(
    load(always, {}).done,
    new RegExp(
      "^Error: export backfill job 7: its end \\(removing the rows the export does not hold\\) " +
        `failed ${TRANSIENT_ATTEMPTS} times: Error \\(CONNECTION_CLOSED\\): write CONNECTION_CLOSED ` +
        "127.0.0.1:54322; the job stays running, and the command run again ends it$",
    ),
  );
});

Deno.test("an error met after the lease was taken over fails nothing: the worker leaves the file", async () => {
  const db = jobDb([fileOf(3), fileOf(4)], [4]);
  const late = new Error("canceling statement due to statement timeout");
  const nextFile = new Error("file 4 opened");
  const { done, lines } = load(db, { 3: late, 4: nextFile });
  await assert.rejects(done, causedBy(nextFile), "the worker went on to file 4");
  assert.deepEqual(failedSegments(db), [3, 4], "fail_segment is asked, and ignores file 3");
  assert.equal(lines[0], left(3, late.message));
});

Deno.test("the merge's own SY002 (a caller's mistake) is an error, not a job that is over", async () => {
  const db = jobDb([fileOf(3)], [3]);
  const mistake = Object.assign(
    new Error("sync.merge_staged(firespring_segments): change 1 has no changed_at or source"),
    { code: "SY002", where: "PL/pgSQL function sync.merge_staged(text) line 16 at RAISE" },
  );
  const { done } = load(db, { 3: mistake });
  await assert.rejects(done, causedBy(mistake));
  assert.deepEqual(failedSegments(db), [3]);
});

Deno.test("a job that ended other than done (cancelled) is thrown, naming the job", async () => {
  const db = jobDb([], [], "cancelled");
  const { done } = load(db, {});
  await assert.rejects(done, /export backfill job 7 ended cancelled/);
});

/** S3's answer when it asks the caller to slow down, as the SDK throws it. */
const slowDown = () =>
  Object.assign(new Error("Please reduce your request rate."), {
    name: "SlowDown",
    $metadata: { httpStatusCode: 503 },
  });

/** Loads job 7 with one worker; each open of a file answers the next of `outcomes`. */
function loadThrough(db: ReturnType<typeof jobDb>, outcomes: Error[]) {
  const slept: number[] = [];
  const lines: string[] = [];
  const done = loadExportJob("7", 1, "loader", {
    sql: db.sql,
    open: () => Promise.reject(outcomes.shift()),
    readAt: new Date("2026-11-29T00:00:00Z"),
    cpu: fakeCpuMeter(),
    log: (line) => lines.push(line),
    sleep: (ms) => {
      slept.push(ms);
      return Promise.resolve();
    },
  });
  return { done, slept, lines };
}

Deno.test("a failure that may pass gives the file back and waits, failing nothing", async () => {
  const db = jobDb([fileOf(3), fileOf(3), fileOf(3)], [3]);
  const gone = Object.assign(new Error("The specified key does not exist."), { name: "NoSuchKey" });
  // S3 throttling, then a file whose bytes stopped mid-way more often than it reads again.
  const broken = new ExportReadError(
    "AWSDynamoDB/01/data/3.json.gz",
    "unreadable after line 40000: connection reset",
    "ECONNRESET",
  );
  const { done, slept, lines } = loadThrough(db, [slowDown(), broken, gone]);
  await assert.rejects(done, causedBy(gone), "the third attempt met an error that does not pass");
  assert.deepEqual(slept, [1000, 2000], "waits that double");
  assert.deepEqual(
    db.matching("sync.release_segment").map((s) => s.values),
    [["7", 3, "loader-0"], ["7", 3, "loader-0"]],
    "the file is given back each time, for any worker to take",
  );
  assert.deepEqual(failedSegments(db), [3], "only the error that does not pass fails it");
  assert.match(
    lines[0],
    /^export backfill job 7 of firespring-backdoor-segments-dev: export data file AWSDynamoDB\/01\/data\/3\.json\.gz: Please reduce your request rate\.; trying again in 1000 ms$/,
  );
});

Deno.test("failures that may pass, too many in a row, stop the loader and leave the job running", async () => {
  const files = Array.from({ length: TRANSIENT_ATTEMPTS }, () => fileOf(3));
  const db = jobDb(files, [3]);
  const down = () =>
    Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
  const { done, slept } = loadThrough(db, files.map(down));
  await assert.rejects(
    done,
    /^Error: export backfill job 7 of firespring-backdoor-segments-dev: export data file .*: connect ECONNREFUSED 127\.0\.0\.1:5432; stopped after 8 failed attempts in a row, the job left running: run the command again to go on from its checkpoints$/,
  );
  assert.deepEqual(slept, [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  assert.deepEqual(
    failedSegments(db),
    [],
    "nothing failed: the next run goes on from the checkpoints",
  );
});

Deno.test("a claim that meets an unavailable database waits and claims again", async () => {
  let claims = 0;
  const db = fakeSql((s) => {
    if (s.text.includes("sync.claim_export_file")) {
      if (claims++ === 0) {
        throw Object.assign(new Error("terminating connection due to administrator command"), {
          code: "57P01",
        });
      }
      return [];
    }
    if (s.text.includes("count(*)::int as n")) return [{ n: 0 }];
    if (s.text.includes("sync.sweep_unseen_chunk(")) return [{ over: true }];
    if (s.text.includes("select status, error from sync.backfill_jobs")) {
      return [{ status: "done", error: null }];
    }
    return undefined;
  });
  const { done, slept } = loadThrough(db as ReturnType<typeof jobDb>, []);
  await done;
  assert.equal(claims, 2);
  assert.deepEqual(slept, [1000]);
});

Deno.test("credentials S3 refuses stop the loader at once, the job left running, the file given back", async () => {
  const db = jobDb([fileOf(3)], [3]);
  const denied = Object.assign(new Error("Access Denied"), {
    name: "AccessDenied",
    $metadata: { httpStatusCode: 403 },
  });
  const { done, slept } = loadThrough(db, [denied]);
  await assert.rejects(
    done,
    /: Access Denied; the loader stopped, the job left running: fix the credentials or the bucket's policy and run the command again \(without s3:ListBucket on the bucket, S3 also answers 403 for a file that is gone, e\.g\. expired by the bucket's lifecycle: then cancel the job and export again\)$/,
  );
  assert.deepEqual(slept, [], "no retry: none can cure it");
  assert.deepEqual(failedSegments(db), [], "nothing failed");
  assert.deepEqual(db.matching("sync.release_segment").map((s) => s.values), [[
    "7",
    3,
    "loader-0",
  ]]);
});

/**
 * One claimed file's database, for `loadExportFile`: the file's checkpoint (`line`),
 * moved by a chunk's merge (sync.merge_staged, the COPY's text staged before it) or a
 * page's (sync.merge_changes) with its checkpoint. A merge whose changes hold `refuse` is
 * refused as Postgres refuses data (22P02), and with `timeOutDone` a statement whose
 * checkpoint ends the file (its `done` true, with rows or alone) times out (57014), as a
 * job's end that waits on its row or its sweep does; `renew` answers each renewal of the lease,
 * `beforeChunkMerge` is awaited before each chunk's merge and `beforePageMerge` before
 * each page's.
 */
function fileDb(
  options: {
    refuse?: string;
    renew?: () => Promise<unknown[]>;
    beforeChunkMerge?: () => Promise<void>;
    beforePageMerge?: () => Promise<void>;
    timeOutDone?: boolean;
  } = {},
) {
  const state = { line: 0, renewals: 0, staged: "" };
  const refused = () =>
    Object.assign(new Error('invalid input syntax for type numeric: "x"'), { code: "22P02" });
  const moveTo = (nextKey: unknown) => state.line = JSON.parse(String(nextKey)).line;
  const timedOut = () =>
    Object.assign(new Error("canceling statement due to statement timeout"), { code: "57014" });
  // The checkpoint's `done` is the one `true` among a statement's values.
  const endsFile = (s: { values: unknown[] }) => options.timeOutDone && s.values.includes(true);
  const db = fakeSql(async (s) => {
    const t = s.text;
    if (t.includes("sync.renew_segment")) {
      state.renewals++;
      return options.renew ? await options.renew() : [];
    }
    if (t === "set local synchronous_commit = off") state.staged = "";
    if (t.startsWith("set local synchronous_commit")) return [];
    if (t.includes("from sync.backfill_segments")) return [{ line: String(state.line) }];
    if (t.includes("sync.merge_staged(")) {
      await options.beforeChunkMerge?.();
      if (options.refuse && state.staged.includes(options.refuse)) throw refused();
      if (endsFile(s)) throw timedOut();
      moveTo(s.values[3]);
      return [{ checkpointed: true, applied: state.staged.split("\n").length - 1 }];
    }
    if (t.includes("sync.merge_changes(")) {
      await options.beforePageMerge?.();
      const atOnce = t.startsWith("with");
      const changes = String(s.values[atOnce ? 6 : 1]);
      if (options.refuse && changes.includes(options.refuse)) throw refused();
      if (atOnce && endsFile(s)) throw timedOut();
      const applied = (JSON.parse(changes) as unknown[]).length;
      if (atOnce) moveTo(s.values[3]);
      return [{ checkpointed: true, applied }];
    }
    if (t.includes("sync.checkpoint_segment(")) {
      if (endsFile(s)) throw timedOut();
      moveTo(s.values[3]);
      return [{ checkpointed: true }];
    }
    if (t.startsWith("insert into sync.dead_letters")) return [];
    if (t.startsWith("select sync.enter_merge(")) return [];
    return undefined;
  });
  // postgres.js's COPY: `tx.unsafe("copy ...").writable()`, here taking the staged text.
  const begin = db.sql.begin;
  const sql = Object.assign((...args: Parameters<typeof db.sql>) => db.sql(...args), db.sql, {
    begin: (work: (tx: postgres.TransactionSql) => Promise<unknown>) =>
      begin((tx) =>
        work(Object.assign((...args: Parameters<typeof tx>) => tx(...args), tx, {
          unsafe: (query: string, params?: unknown[]) =>
            query.startsWith("copy ")
              ? {
                writable: () =>
                  Promise.resolve(
                    new Writable({
                      write(chunk, _encoding, done) {
                        state.staged += String(chunk);
                        done();
                      },
                    }),
                  ),
              }
              : tx.unsafe(query, params as never),
        }) as unknown as postgres.TransactionSql)
      ),
  }) as unknown as postgres.Sql;
  return { ...db, sql, state };
}

/**
 * A gzipped data file of segments `ids`, each item with `pad` characters of noise; a
 * `nan-` id's item has a count that is no number, which the table refuses (a dead letter).
 */
async function segmentsFile(ids: string[], pad = 0) {
  const noise = () => {
    const bytes = crypto.getRandomValues(new Uint8Array(Math.ceil(pad * 3 / 4)));
    return btoa(String.fromCharCode(...bytes)).slice(0, pad);
  };
  const item = (id: string) => ({
    segment_id: { S: id },
    raw: { S: noise() },
    ...id.startsWith("nan-") ? { value: { S: "many" } } : {},
  });
  const text = ids.map((id) => JSON.stringify({ Item: item(id) }) + "\n").join("");
  const gzipped = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  const bytes = new Uint8Array(await new Response(gzipped).arrayBuffer());
  const claim: ExportFileClaim = {
    segment: 3,
    data_key: "AWSDynamoDB/01/data/3.json.gz",
    item_count: ids.length,
    md5: createHash("md5").update(bytes).digest("base64"),
    next_line: 0,
    source_table: "firespring-backdoor-segments-dev",
    target_table: "firespring_segments",
    page_size: 1,
  };
  return { bytes, claim };
}

/** The deps of loading job 7's file with worker w1; `open` fails past 10 reads of it. */
function fileDeps(
  db: ReturnType<typeof fileDb>,
  open: () => ReadableStream<Uint8Array>,
  over: Partial<ExportLoadDeps> = {},
) {
  const lines: string[] = [];
  const slept: number[] = [];
  let opens = 0;
  const deps: ExportLoadDeps = {
    sql: db.sql,
    open: () =>
      ++opens > 10
        ? Promise.reject(new Error("the file was opened more than 10 times"))
        : Promise.resolve(open()),
    readAt: new Date("2026-11-29T00:00:00Z"),
    cpu: fakeCpuMeter(),
    log: (line) => lines.push(line),
    sleep: (ms) => (slept.push(ms), Promise.resolve()),
    ...over,
  };
  return { deps, lines, slept, opens: () => opens };
}

Deno.test("a chunk ends with the first page that has dead letters: it holds one page's, not a chunk's", async () => {
  const db = fileDb();
  const { bytes, claim } = await segmentsFile(["s-1", "nan-2", "nan-3", "s-4", "s-5", "s-6"]);
  const { deps, lines } = fileDeps(db, () => new Blob([bytes]).stream(), { chunkPages: 10 });
  assert.equal(await loadExportFile("7", "w1", claim, deps), 4);
  assert.equal(db.state.line, 6, "the file's checkpoint at its end");
  assert.deepEqual(
    db.matching("sync.checkpoint_segment(").map((s) => JSON.parse(String(s.values[3])).line),
    [2, 3, 6],
    "chunks of pages 1-2, 3 and 4-6",
  );
  assert.equal(db.matching("sync.dead_letters").length, 2, "a letter for each of nan-2 and nan-3");
  assert.deepEqual(
    lines.filter((l) => l.includes("dead letter")).map((l) => l.replace(/: dead letter: .*/, "")),
    [
      "export backfill job 7 file AWSDynamoDB/01/data/3.json.gz of firespring-backdoor-segments-dev",
      "export backfill job 7 file AWSDynamoDB/01/data/3.json.gz of firespring-backdoor-segments-dev",
    ],
    "once committed, each letter with its file",
  );
  assert.ok(lines.some((l) => /dead letter: .*nan-2/.test(l)), lines.join("\n"));
});

Deno.test("a refused chunk's lines, all of them, go the careful way once; the chunk is not tried again", async () => {
  const db = fileDb({ refuse: "bad" });
  const { bytes, claim } = await segmentsFile(["s-1", "bad"]);
  const { deps, lines, opens } = fileDeps(db, () => new Blob([bytes]).stream(), {
    chunkPages: 2,
  });
  assert.equal(await loadExportFile("7", "w1", claim, deps), 1);
  assert.equal(db.state.line, 2, "the file's checkpoint at its end");
  assert.equal(db.matching("sync.merge_staged(").length, 1, "the refused chunk, once");
  assert.equal(
    db.matching("sync.dead_letters").length,
    1,
    "the refused line dead-lettered on the careful way",
  );
  assert.match(
    lines[0],
    /: lines 1 to 2: invalid input syntax .*; writing those lines page by page$/,
  );
  assert.equal(opens(), 2);
});

Deno.test("a file's last checkpoint, alone in its chunk, that times out is thrown as one that may pass: the file is not read again", async () => {
  const db = fileDb({ timeOutDone: true });
  const { bytes, claim } = await segmentsFile(["s-1", "s-2"]);
  const { deps, lines, opens } = fileDeps(db, () => new Blob([bytes]).stream(), {
    chunkPages: 2,
  });
  await assert.rejects(
    loadExportFile("7", "w1", claim, deps),
    (error: Error & { code?: string }) =>
      error.code === "57014" && transientLoadFailure(error) &&
      /the checkpoint that ends the file timed out: .*statement timeout/.test(error.message),
  );
  assert.equal(db.state.line, 2, "both lines merged before the end");
  assert.equal(opens(), 1, "the file read once");
  assert.deepEqual(lines.filter((l) => l.includes("page by page")), []);
});

Deno.test("a file's last chunk with lines whose end times out: its lines are written page by page, and only the end is thrown as one that may pass", async () => {
  const db = fileDb({ timeOutDone: true });
  const { bytes, claim } = await segmentsFile(["s-1", "s-2", "s-3"]);
  // Pages of 2: the last page holds s-3 and ends the file, in the one chunk.
  const { deps, lines, opens } = fileDeps(db, () => new Blob([bytes]).stream(), {
    chunkPages: 2,
  });
  await assert.rejects(
    loadExportFile("7", "w1", { ...claim, page_size: 2 }, deps),
    (error: Error & { code?: string }) =>
      error.code === "57014" && transientLoadFailure(error) &&
      /the checkpoint that ends the file timed out: .*statement timeout/.test(error.message),
  );
  assert.equal(db.state.line, 3, "every line merged, its checkpoint before the end");
  assert.equal(
    lines.filter((l) => l.includes("writing those lines page by page")).length,
    1,
    "the chunk that timed out was written page by page",
  );
  assert.equal(opens(), 2, "read once more, for the careful way");
});

Deno.test("a file whose bytes break after every chunk committed loads: a broken read is counted from the last progress", async () => {
  const db = fileDb();
  const ids = ["s-1", "s-2", "s-3", "s-4", "s-5", "s-6"];
  const { bytes, claim } = await segmentsFile(ids, 3000);
  // Each read of the file breaks once a chunk was committed since it began.
  const breaking = () => {
    const from = db.state.line;
    let at = 0;
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        if (db.state.line > from) {
          controller.error(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }));
        } else if (at >= bytes.length) controller.close();
        else controller.enqueue(bytes.slice(at, at += 64));
      },
    }, { highWaterMark: 0 });
  };
  const { deps, lines, slept } = fileDeps(db, breaking, { chunkPages: 1 });
  assert.equal(await loadExportFile("7", "w1", claim, deps), ids.length);
  assert.equal(db.state.line, ids.length);
  assert.ok(slept.length > FILE_READ_RETRIES, `more breaks than retries of one read: ${slept}`);
  assert.deepEqual(slept, slept.map(() => 1000), "each the first retry since progress");
  assert.equal(
    lines.filter((l) => /: read ECONNRESET.*; reading it again from line \d+ in 1000 ms$/.test(l))
      .length,
    slept.length,
  );
});

Deno.test("a renewal that finds the lease another's during a long chunk leaves the file: no chunk after it", async () => {
  const lost = Object.assign(new Error("backfill job 7 segment 3: w1 no longer holds the lease"), {
    code: "SY001",
  });
  // The chunk's merge ends only after three renewals of its lease.
  let renewed = () => {};
  const db = fileDb({
    renew: () => (renewed(), Promise.reject(lost)),
    beforeChunkMerge: () =>
      new Promise<void>((resolve) => renewed = () => db.state.renewals >= 3 && resolve()),
  });
  const { bytes, claim } = await segmentsFile(["s-1", "s-2"]);
  const { deps } = fileDeps(db, () => new Blob([bytes]).stream(), {
    chunkPages: 1,
    stuckChunkGraceMs: 30,
  });
  await assert.rejects(
    loadExportFile("7", "w1", { ...claim, lease_seconds: 0.03 }, deps),
    (error: Error & { code?: string }) => {
      assert.equal(error.code, "SY001");
      assert.match(
        error.message,
        /a write from line 0 did not end within .* of its lease being left/,
      );
      return true;
    },
  );
  assert.equal(db.state.renewals, 1, "the lease is not renewed after it was found another's");
  assert.equal(db.transactions.begun, 1, "no further chunk");
  assert.equal(db.state.line, 0);
});

Deno.test("a page written on its own holds the file's lease while it waits, as a chunk does", async () => {
  // The careful pages wait (the table's merge lock, behind sibling chunks) for longer than
  // a third of the lease: it is renewed meanwhile, or a sibling would take the file over.
  const db = fileDb({
    refuse: "bad",
    beforePageMerge: () => new Promise((resolve) => setTimeout(resolve, 60)),
  });
  const { bytes, claim } = await segmentsFile(["s-1", "bad"]);
  const { deps } = fileDeps(db, () => new Blob([bytes]).stream(), { chunkPages: 2 });
  const renewedBefore = db.state.renewals;
  assert.equal(await loadExportFile("7", "w1", { ...claim, lease_seconds: 0.03 }, deps), 1);
  // Each careful page checks its durable start with one renewal; the waits add more.
  assert.ok(db.state.renewals - renewedBefore > 2, `renewed ${db.state.renewals} times`);
  assert.equal(db.state.line, 2);
});

Deno.test("a page written on its own after chunks a crash lost starts from the checkpoint that lasted", async () => {
  // Lines 1-2 commit as a chunk (without waiting for their WAL); lines 3-4 are refused.
  // Postgres then crashes and loses the first chunk: the careful page must not write its
  // checkpoint past lines nobody wrote, and is refused as a lease lost.
  let crashed = false;
  const db = fileDb({
    refuse: "bad",
    renew: () => {
      if (!crashed) (crashed = true, db.state.line = 0);
      return Promise.resolve([]);
    },
  });
  const { bytes, claim } = await segmentsFile(["s-1", "s-2", "bad", "s-4"]);
  const { deps } = fileDeps(db, () => new Blob([bytes]).stream(), { chunkPages: 2 });
  await assert.rejects(
    loadExportFile("7", "w1", claim, deps),
    (error: Error & { code?: string }) =>
      error.code === "SY001" &&
      /file 3 of firespring-backdoor-segments-dev: its checkpoint is at line 0, not 2 where this write starts/
        .test(error.message),
  );
  assert.equal(db.matching("sync.merge_changes(").length, 0, "no page written past the lost lines");
});
