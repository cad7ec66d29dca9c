/**
 * The deployable Lambda: `npm run build:lambda`'s zip, unpacked and run by Node.js 22 (the
 * major of its `nodejs22.x` runtime: the official binary that lambda/lambda_node.ts
 * installs, not the machine's node) as the Lambda runtime would (require index.js, call
 * `handler(event, context)`), with a real DynamoDB Streams event from DynamoDB Local,
 * against the local webhook.
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
import {
  FORWARDER_CREDENTIALS,
  startFakeSecretsManager,
} from "../local-stack/aws/secrets_manager.ts";
import {
  LAMBDA_MEMORY_MB,
  LAMBDA_NODE_MAJOR,
  lambdaNode,
  lambdaNodeFlags,
} from "../lambda/lambda_node.ts";
import type { StreamRecord } from "../lambda/stream_records.ts";
import { connectDb, dynamo, eventually, stack, streamRecordsContaining } from "./stack_clients.ts";

/**
 * The peak resident memory, in MB, of a Node.js that loads nothing, run as
 * {@link invokeInNode} runs the bundle: the same binary and heap flags, the same run.
 */
async function bareNodePeakMb(): Promise<number> {
  const out = await new Deno.Command(await lambdaNode(), {
    args: [
      ...lambdaNodeFlags(),
      "-e",
      `console.log(require("fs").readFileSync("/proc/self/status", "utf8").match(/VmHWM:\\s+(\\d+)/)[1])`,
    ],
    clearEnv: true,
    stdout: "piped",
  }).output();
  return Number(new TextDecoder().decode(out.stdout).trim()) / 1024;
}

/**
 * Runs the bundle's handler in one process of the Lambda's Node.js major (one warm Lambda
 * instance) with each event in turn; returns its answers and its logs. Fails unless that
 * process is Node.js 22.
 */
async function invokeInNode(
  dir: string,
  events: unknown[],
  env: Record<string, string>,
  budgetMs = 10_000,
) {
  writeFileSync(join(dir, "events.json"), JSON.stringify(events));
  const script = `
    console.log("NODE " + process.version);
    const { handler } = require(${JSON.stringify(join(dir, "index.js"))});
    const events = require(${JSON.stringify(join(dir, "events.json"))});
    (async () => {
      for (const event of events) {
        const end = Date.now() + ${budgetMs};
        const context = { getRemainingTimeInMillis: () => end - Date.now(), awsRequestId: "test" };
        await handler(event, context).then(
          (r) => console.log("RESULT " + JSON.stringify(r)),
          (e) => console.log("ERROR " + e.message));
      }
      const status = require("fs").readFileSync("/proc/self/status", "utf8");
      console.log("PEAK_KB " + status.match(/VmHWM:\\s+(\\d+)/)[1]);
    })();`;
  const out = await new Deno.Command(await lambdaNode(), {
    // With the heap limits of the Lambda's runtime for its memory size.
    args: [...lambdaNodeFlags(), "-e", script],
    // Only the function's configured environment, as on Lambda: nothing of this process's.
    clearEnv: true,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const logs = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const version = logs.match(/^NODE (\S+)$/m)?.[1];
  assert.ok(
    version?.startsWith(`v${LAMBDA_NODE_MAJOR}.`),
    `the zip runs on Node.js ${LAMBDA_NODE_MAJOR}, not ${version}: ${logs}`,
  );
  const results = [...logs.matchAll(/^(RESULT|ERROR) (.*)$/gm)]
    .map((m) => m[1] === "RESULT" ? JSON.parse(m[2]) : { error: m[2] });
  const peakMb = Number(logs.match(/^PEAK_KB (\d+)$/m)?.[1]) / 1024;
  return { results, result: results[0], logs, peakMb };
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
    const ok = await invokeInNode(dir, [{ Records: records }], env);
    assert.deepEqual(ok.result, { batchItemFailures: [] }, ok.logs);
    assert.match(
      ok.logs,
      /delivered 1 records of [\w-]+ from \d+, key \[\w+="[^"]*"[^\]]*\]: \{"received":1,/,
    );

    // Refused (401) until the invocation's time runs out: retried meanwhile, as a rotation
    // under way may need. 15 s, as a loaded machine took the first answer past 3.
    const refused = await invokeInNode(dir, [{ Records: records }], {
      ...env,
      SYNC_WEBHOOK_SECRET: `whsec_${btoa("wrong".repeat(8))}`,
    }, 15_000);
    assert.deepEqual(refused.result, {
      batchItemFailures: [{ itemIdentifier: records[0].dynamodb!.SequenceNumber }],
    });
    assert.match(refused.logs, /webhook answered 401/);

    // Deployed, the secret comes from Secrets Manager: read once at cold start, then cached.
    const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mmp-toledo/webhook-AbCdEf";
    const secrets = startFakeSecretsManager({ [arn]: stack.SYNC_WEBHOOK_SECRET });
    try {
      const deployed = {
        PATH: env.PATH,
        WEBHOOK_URL: env.WEBHOOK_URL,
        SYNC_WEBHOOK_SECRET_ARN: arn,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint,
        ...FORWARDER_CREDENTIALS,
        AWS_REGION: "us-east-1",
      };
      const warm = await invokeInNode(dir, [{ Records: records }, { Records: records }], deployed);
      assert.deepEqual(
        warm.results,
        [{ batchItemFailures: [] }, { batchItemFailures: [] }],
        warm.logs,
      );
      assert.deepEqual(
        secrets.reads.toSorted(),
        [arn, `${arn} (AWSPREVIOUS)`],
        "one Secrets Manager read (current and previous versions) for two invocations",
      );

      // A rotation begun in Secrets Manager before Supabase has the new secret: the
      // previous version's signature still verifies, and nothing waits.
      secrets.secrets.set(arn, `whsec_${btoa("rotated".repeat(5))}`);
      secrets.previous.set(arn, stack.SYNC_WEBHOOK_SECRET);
      const rotating = await invokeInNode(dir, [{ Records: records }], deployed);
      assert.deepEqual(rotating.result, { batchItemFailures: [] }, rotating.logs);
      assert.doesNotMatch(rotating.logs, /webhook answered 401/);

      // A secret that holds nothing: nothing sent, the batch retried as it is (a thrown
      // error would make Lambda split it), the cause and the batch in the log.
      // (The forwarder holds a batch it did not deliver until 30 s into the invocation or
      // its deadline, whichever comes first, so that Lambda's retry does not come at once:
      // 4 s here.)
      secrets.secrets.set(arn, "");
      const unset = await invokeInNode(dir, [{ Records: records }], deployed, 4_000);
      assert.deepEqual(unset.result, {
        batchItemFailures: [{ itemIdentifier: records[0].dynamodb!.SequenceNumber }],
      });
      assert.match(
        unset.logs,
        /holds no valid whsec_\.\.\. value \(it is not set\); put the one Supabase has.*; nothing sent \(the batch of \S+ from \d+, key \[.+\]\), the batch is retried as it is/,
      );
    } finally {
      await secrets.close();
    }

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

Deno.test("the largest batch Lambda hands the zip (6 MB of records) is forwarded in one body, within half the Lambda's memory", async () => {
  const files = unzipSync(readFileSync(await buildLambda()));
  const dir = mkdtempSync(join(tmpdir(), "lambda-"));
  // The webhook's side: counts the records of each body it gets.
  const bodies: number[] = [];
  const webhook = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const { records } = await req.json();
      bodies.push(records.length);
      return Response.json({
        received: records.length,
        applied: records.length,
        skipped: 0,
        deadLettered: 0,
      });
    },
  );
  try {
    writeFileSync(join(dir, "index.js"), files["index.js"]);
    // Ten records whose old and new images are near the 400 KB item limit: the event
    // source mapping's invocation payload is at most 6 MB
    // (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html). Text with
    // characters outside Latin-1 (V8 keeps it two bytes a character).
    const text = "Données de session € ".repeat(12_400);
    const image = (i: number) => ({ id: { S: `big-${i}` }, session_data: { S: text } });
    const records = Array.from({ length: 10 }, (_, i) => ({
      eventID: `big-${i}`,
      eventName: "MODIFY",
      eventVersion: "1.1",
      eventSource: "aws:dynamodb",
      awsRegion: "us-east-1",
      eventSourceARN:
        "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/2026-11-30T00:00:00.000",
      dynamodb: {
        ApproximateCreationDateTime: 1_795_000_000,
        Keys: { id: { S: `big-${i}` } },
        NewImage: image(i),
        OldImage: image(i),
        SequenceNumber: String(1_000 + i),
        SizeBytes: 2 * new TextEncoder().encode(text).length,
        StreamViewType: "NEW_AND_OLD_IMAGES",
      },
    }));
    const size = new TextEncoder().encode(JSON.stringify({ Records: records })).length;
    assert.ok(size > 5.5 * 1024 * 1024 && size < 6 * 1024 * 1024, `an event of ${size} bytes`);
    // As deployed: the secret read from Secrets Manager, with the AWS SDK.
    const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mmp-toledo/webhook-AbCdEf";
    const secrets = startFakeSecretsManager({ [arn]: stack.SYNC_WEBHOOK_SECRET });
    const run = await invokeInNode(dir, [{ Records: records }], {
      PATH: Deno.env.get("PATH")!,
      WEBHOOK_URL: `http://127.0.0.1:${webhook.addr.port}/`,
      SYNC_WEBHOOK_SECRET_ARN: arn,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint,
      ...FORWARDER_CREDENTIALS,
      AWS_REGION: "us-east-1",
      // The deployed timeout (lambda_timeout, 60 s): 6 MB signed, sent and parsed by the
      // webhook's side took more than 10 s on a loaded machine.
    }, 60_000).finally(() => secrets.close());
    assert.deepEqual(run.result, { batchItemFailures: [] }, run.logs);
    assert.deepEqual(bodies, [10]);
    const bare = await bareNodePeakMb();
    const own = run.peakMb - bare;
    console.log(
      `peak resident memory: ${run.peakMb.toFixed(1)} MB of ${LAMBDA_MEMORY_MB} MB, ` +
        `${own.toFixed(1)} MB over a bare Node (${bare.toFixed(1)} MB)`,
    );
    // What the batch itself takes, over a Node that loads nothing (measured beside it: a
    // bare Node's resident size is mostly its binary's pages, which depend on the host's
    // kernel, 43 MB on one and 60 MB on another, where large folios map the file): a
    // third of the memory at most, so that with Node itself and the runtime's own client
    // (which receives the event and parses it, in the same sandbox) it stays well within
    // what Lambda allows before it kills the sandbox, heap or not.
    assert.ok(
      own <= LAMBDA_MEMORY_MB / 3,
      `the Lambda took ${own.toFixed(1)} MB over a bare Node for one batch, more than a ` +
        `third of its ${LAMBDA_MEMORY_MB} MB; Lambda kills it past ${LAMBDA_MEMORY_MB} MB, ` +
        "Node and its runtime included",
    );
  } finally {
    await webhook.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
});
