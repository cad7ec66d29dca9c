/**
 * The deployable Lambda: `npm run build:lambda`'s zip, unpacked and run by Node 20 as
 * the Lambda runtime would (require index.js, call `handler(event, context)`), with a
 * real DynamoDB Streams event from DynamoDB Local, against the local webhook.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { unzipSync } from "fflate";
import { byTargetTable } from "../functions-shared/table_registry.ts";
import { buildLambda } from "../lambda/build.ts";
import type { StreamRecord } from "../lambda/stream_forwarder.ts";
import { connectDb, dynamo, eventually, stack, streamRecordsContaining } from "./stack_clients.ts";

/** Runs the bundle's handler in Node with an event; returns its answer and its logs. */
async function invokeInNode(dir: string, event: unknown, env: Record<string, string>) {
  writeFileSync(join(dir, "event.json"), JSON.stringify(event));
  const script = `
    const { handler } = require(${JSON.stringify(join(dir, "index.js"))});
    const event = require(${JSON.stringify(join(dir, "event.json"))});
    const end = Date.now() + 10000;
    handler(event, { getRemainingTimeInMillis: () => end - Date.now(), awsRequestId: "test" })
      .then((r) => console.log("RESULT " + JSON.stringify(r)), (e) => { console.log("ERROR " + e.message); process.exitCode = 1; });`;
  const out = await new Deno.Command("node", {
    args: ["-e", script],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const logs = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const result = logs.match(/^RESULT (.*)$/m)?.[1];
  return { result: result ? JSON.parse(result) : undefined, logs };
}

Deno.test("the built zip forwards a real stream event to the webhook", async () => {
  const zip = await buildLambda();
  const files = unzipSync(readFileSync(zip));
  assert.deepEqual(Object.keys(files), ["index.js"], "index.js at the archive's root");
  const dir = mkdtempSync(join(tmpdir(), "lambda-"));
  try {
    writeFileSync(join(dir, "index.js"), files["index.js"]);

    const spec = byTargetTable("firespring_traffic_sources")!;
    const id = `lambda-${crypto.randomUUID()}`;
    await dynamo(spec.region).send(
      new PutItemCommand({
        TableName: spec.sourceTable,
        Item: { source_id: { S: id }, name: { S: "bundle" }, visitors: { N: "42" } },
      }),
    );
    const records = (await streamRecordsContaining(spec.targetTable, id)).found
      .map((f) => f.record as StreamRecord);
    assert.equal(records.length, 1, "the put is in the stream");

    const env = {
      PATH: Deno.env.get("PATH")!,
      WEBHOOK_URL: `${stack.FUNCTIONS_URL}/mmp-toledo-sync`,
      SYNC_WEBHOOK_SECRET: stack.SYNC_WEBHOOK_SECRET,
    };
    const ok = await invokeInNode(dir, { Records: records }, env);
    assert.deepEqual(ok.result, { batchItemFailures: [] }, ok.logs);
    assert.match(ok.logs, /delivered 1 records from \d+: \{"received":1,/);

    const refused = await invokeInNode(dir, { Records: records }, {
      ...env,
      SYNC_WEBHOOK_SECRET: `whsec_${btoa("wrong".repeat(8))}`,
    });
    assert.deepEqual(refused.result, {
      batchItemFailures: [{ itemIdentifier: records[0].dynamodb!.SequenceNumber }],
    });
    assert.match(refused.logs, /webhook answered 401/);

    const sql = connectDb();
    try {
      const row = await eventually("the row", async () => {
        const [r] = await sql`select source_name, visitor_count::int as n
                              from firespring_traffic_sources where source_id = ${id}`;
        return r;
      });
      assert.deepEqual({ ...row }, { source_name: "bundle", n: 42 });
    } finally {
      await sql.end();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
