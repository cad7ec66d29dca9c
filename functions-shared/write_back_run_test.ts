import assert from "node:assert/strict";
import { awsError, fakeDynamo, fakeSql, type Statement } from "./testing_fakes.ts";
import { handleWriteBackRequest, runWriteBacks, type WriteBackDeps } from "./write_back_run.ts";

const claimed = {
  id: "7",
  target_table: "firespring_segments",
  row_key: '{"segment_id": "s-1"}',
  range_key: null,
  columns: ["segment_name"],
  before_values: '{"segment_name": "Old"}',
  after_values: '{"segment_name": "New"}',
};
const item = { segment_id: { S: "s-1" }, name: { S: "Old" } };

/** A database with one due write-back; records how each ended. */
function db() {
  let claims = 0;
  const finished: Statement[] = [];
  const fake = fakeSql((s) => {
    if (s.text.includes("sync.claim_write_backs")) return claims++ === 0 ? [claimed] : [];
    if (s.text.includes("sync.finish_write_back")) {
      finished.push(s);
      return [{ status: s.values[2] }];
    }
    return undefined;
  });
  return { ...fake, finished };
}

function deps(sql: WriteBackDeps["sql"], overrides: Partial<WriteBackDeps> = {}): WriteBackDeps {
  return {
    sql,
    serviceKeys: ["sb_secret_test"],
    reader: () => {
      throw new Error("no reader");
    },
    writer: () => "no writer",
    worker: "w-1",
    wallBudgetMs: 10_000,
    ...overrides,
  };
}

Deno.test("a request needs POST and a service key", async () => {
  const { sql } = db();
  const get = await handleWriteBackRequest(new Request("http://x/", { method: "GET" }), deps(sql));
  assert.equal(get.status, 405);
  const anonymous = await handleWriteBackRequest(
    new Request("http://x/", { method: "POST" }),
    deps(sql),
  );
  assert.equal(anonymous.status, 401);
  assert.doesNotMatch(await anonymous.text(), /sb_secret_test/);
});

Deno.test("a due edit is written with UpdateItem on condition and ends applied", async () => {
  const database = db();
  const dynamo = fakeDynamo((c) => (c.name === "GetItemCommand" ? { Item: item } : {}));
  const report = await runWriteBacks(
    deps(database.sql, { reader: dynamo.dynamo, writer: dynamo.dynamo }),
  );
  assert.deepEqual(report, { applied: 1, conflict: 0, failed: 0, retrying: 0 });
  assert.deepEqual(dynamo.sent.map((c) => c.name), ["GetItemCommand", "UpdateItemCommand"]);
  assert.equal(dynamo.sent[0].input.ConsistentRead, true);
  assert.equal(dynamo.sent[1].input.ConditionExpression, "attribute_exists(#a1) AND #a0 = :v1");
  assert.equal(database.finished[0].values[2], "applied");
  assert.match(String(database.finished[0].values[3]), /firespring_segments \[segment_id="s-1"\]/);
});

Deno.test("a lost answer of an update that took effect is no conflict: applied", async () => {
  const database = db();
  let reads = 0;
  const dynamo = fakeDynamo((c) => {
    if (c.name === "GetItemCommand") {
      return { Item: reads++ === 0 ? item : { ...item, name: { S: "New" } } };
    }
    throw awsError("ConditionalCheckFailedException");
  });
  const report = await runWriteBacks(
    deps(database.sql, { reader: dynamo.dynamo, writer: dynamo.dynamo }),
  );
  assert.equal(report.applied, 1);
});

Deno.test("throttling and missing writer credentials are retried, naming the cause", async () => {
  const throttled = db();
  const dynamo = fakeDynamo(() => {
    throw awsError("ProvisionedThroughputExceededException", "rate exceeded");
  });
  const report = await runWriteBacks(
    deps(throttled.sql, { reader: dynamo.dynamo, writer: dynamo.dynamo }),
  );
  assert.equal(report.retrying, 1);
  assert.equal(throttled.finished[0].values[2], "pending");
  assert.match(
    String(throttled.finished[0].values[3]),
    /^firespring_segments \[segment_id="s-1"\]: ProvisionedThroughputExceededException: rate exceeded/,
  );
  const noKey = db();
  await runWriteBacks(
    deps(noKey.sql, { writer: () => "no writer credentials: set WRITE_BACK_AWS_ACCESS_KEY_ID" }),
  );
  assert.equal(noKey.finished[0].values[2], "pending");
  assert.match(String(noKey.finished[0].values[3]), /no writer credentials/);
});

Deno.test("an unreachable database answers 503 with Retry-After, as the other functions", async () => {
  const { sql } = fakeSql(() => {
    throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6543"), { code: "ECONNREFUSED" });
  });
  const answer = await handleWriteBackRequest(
    new Request("http://x/", {
      method: "POST",
      headers: { authorization: "Bearer sb_secret_test" },
    }),
    deps(sql),
  );
  assert.equal(answer.status, 503);
  assert.equal(answer.headers.get("retry-after"), "5");
  assert.deepEqual(await answer.json(), { error: "the database is unavailable; retry later" });
});
