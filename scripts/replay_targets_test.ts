import assert from "node:assert/strict";
import { replayTargets } from "./replay_targets.ts";

Deno.test("the targets: the local stack's unless a webhook is named; a secret without its URL is refused", () => {
  const stack = {
    FUNCTIONS_URL: "http://127.0.0.1:54321/functions/v1",
    SYNC_WEBHOOK_SECRET: "whsec_local",
    DYNAMODB_ENDPOINT: "http://127.0.0.1:8000",
  };
  const local: Record<string, string | undefined> = {};
  assert.deepEqual(replayTargets(local, stack), {
    line: "webhook at 127.0.0.1:54321, " +
      "DynamoDB Streams at http://127.0.0.1:8000",
  });
  assert.equal(local.SYNC_WEBHOOK_SECRET, "whsec_local");

  const forgotUrl: Record<string, string | undefined> = { SYNC_WEBHOOK_SECRET: "whsec_prod" };
  const refused = replayTargets(forgotUrl, stack);
  assert.ok("problem" in refused);
  assert.match(refused.problem, /^WEBHOOK_URL is not set: name the webhook/);
  assert.ok(!refused.problem.includes("whsec_prod"), "no secret in the message");
  assert.equal(forgotUrl.DYNAMODB_ENDPOINT, undefined, "nothing of the local stack's taken");
  // The same with the secret's ARN (Secrets Manager) in place of the secret.
  const forgotUrlArn: Record<string, string | undefined> = {
    SYNC_WEBHOOK_SECRET_ARN: "arn:aws:secretsmanager:us-east-1:1:secret:webhook",
  };
  const refusedArn = replayTargets(forgotUrlArn, stack);
  assert.ok("problem" in refusedArn);
  assert.match(refusedArn.problem, /^WEBHOOK_URL is not set: name the webhook/);
  assert.equal(forgotUrlArn.DYNAMODB_ENDPOINT, undefined, "nothing of the local stack's taken");

  const production: Record<string, string | undefined> = {
    WEBHOOK_URL: "https://abcdefghijklmnopqrst.supabase.co/functions/v1/mmp-toledo-sync",
    SYNC_WEBHOOK_SECRET: "whsec_prod",
  };
  assert.deepEqual(replayTargets(production, stack), {
    line: "webhook at abcdefghijklmnopqrst.supabase.co, " +
      "DynamoDB Streams at AWS's regional endpoints",
  });
  assert.equal(production.DYNAMODB_ENDPOINT, undefined);
  assert.ok("problem" in replayTargets({}, undefined), "no stack and no URL");
  const noSecret = replayTargets({ WEBHOOK_URL: production.WEBHOOK_URL }, stack);
  assert.ok("problem" in noSecret, "a webhook named without its secret");
  assert.match(noSecret.problem, /^neither SYNC_WEBHOOK_SECRET nor SYNC_WEBHOOK_SECRET_ARN is set/);
  assert.ok(
    "line" in
      replayTargets({
        ...production,
        SYNC_WEBHOOK_SECRET: undefined,
        SYNC_WEBHOOK_SECRET_ARN: "arn:aws:secretsmanager:us-east-1:1:secret:x",
      }, stack),
  );
});
