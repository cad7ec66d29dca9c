import assert from "node:assert/strict";
import process from "node:process";
import {
  FORWARDER_CREDENTIALS,
  startFakeSecretsManager,
} from "../local-stack/aws/secrets_manager.ts";
import {
  CACHE_MS,
  forgetWebhookSecret,
  RETRY_FAILED_READ_MS,
  STALE_MS,
  webhookSecret,
} from "./webhook_secret.ts";

const ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mmp-toledo/webhook-AbCdEf";
const SECRET = `whsec_${btoa("a".repeat(32))}`;
const ROTATED = `whsec_${btoa("b".repeat(32))}`;

// One fake for the file: the module keeps its SDK client, as a warm Lambda does.
const fake = startFakeSecretsManager({});

/** Points the AWS SDK at the fake holding `secrets`, with fake credentials, as Lambda's env would. */
function withFake(secrets: Record<string, string>) {
  fake.secrets.clear();
  fake.previous.clear();
  fake.failing.clear();
  fake.hanging.clear();
  // The role's policy grants the one secret the Lambda is pointed at (main.tf).
  fake.readable.clear();
  fake.readable.add(ARN);
  fake.refusals.length = 0;
  for (const [arn, value] of Object.entries(secrets)) fake.secrets.set(arn, value);
  fake.reads.length = 0;
  forgetWebhookSecret();
  delete process.env.SYNC_WEBHOOK_SECRET;
  Object.assign(process.env, {
    SYNC_WEBHOOK_SECRET_ARN: ARN,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: fake.endpoint,
    ...FORWARDER_CREDENTIALS,
  });
  return {
    fake,
    close() {
      delete process.env.SYNC_WEBHOOK_SECRET_ARN;
      delete process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER;
      delete process.env.AWS_SESSION_TOKEN;
      forgetWebhookSecret();
    },
  };
}

Deno.test("reads the secret from Secrets Manager once and serves it from memory", async () => {
  const { fake, close } = withFake({ [ARN]: SECRET });
  try {
    const now = Date.now();
    assert.equal(await webhookSecret(now), SECRET);
    assert.equal(await webhookSecret(now + 1000), SECRET);
    assert.deepEqual(fake.reads.toSorted(), [ARN, `${ARN} (AWSPREVIOUS)`], "one read for two uses");

    fake.secrets.set(ARN, ROTATED);
    assert.equal(await webhookSecret(now + CACHE_MS + 1), ROTATED, "read again when stale");
    fake.secrets.set(ARN, SECRET);
    forgetWebhookSecret();
    assert.equal(await webhookSecret(now + CACHE_MS + 2), SECRET, "read again when forgotten");
    assert.equal(fake.reads.length, 6);
  } finally {
    close();
  }
});

Deno.test("a secret without a whsec_ value is refused with the command that fixes it", async () => {
  const { fake, close } = withFake({ [ARN]: "" });
  try {
    await assert.rejects(
      webhookSecret(),
      (error: Error) => {
        assert.match(
          error.message,
          /the webhook secret arn:aws:secretsmanager:.* holds no valid whsec_\.\.\. value \(it is not set\); /,
        );
        // The secret's region (the two forwarders' differ) and the value kept off the
        // command line.
        assert.ok(
          error.message.endsWith(
            `printf %s "$SYNC_WEBHOOK_SECRET" | aws secretsmanager put-secret-value ` +
              `--region us-east-1 --secret-id ${ARN} --secret-string file:///dev/stdin`,
          ),
          error.message,
        );
        return true;
      },
    );
    fake.secrets.set(ARN, SECRET);
    assert.equal(await webhookSecret(), SECRET, "a failed read is not cached");
  } finally {
    close();
  }
});

Deno.test("a missing secret names the secret and Secrets Manager's cause", async () => {
  const { close } = withFake({});
  try {
    await assert.rejects(
      webhookSecret(),
      /cannot read the webhook secret arn:aws:secretsmanager:us-east-1:.*: Secrets Manager can't find the specified secret/,
    );
  } finally {
    close();
  }
});

Deno.test("SYNC_WEBHOOK_SECRET, when set, is used as it is", async () => {
  process.env.SYNC_WEBHOOK_SECRET = SECRET;
  try {
    assert.equal(await webhookSecret(), SECRET);
  } finally {
    delete process.env.SYNC_WEBHOOK_SECRET;
  }
});

Deno.test("a value that is not a usable secret is refused, naming why and not the value, and not cached", async () => {
  const { fake, close } = withFake({ [ARN]: "whsec_c2hvcnQ=" });
  try {
    await assert.rejects(
      webhookSecret(),
      (error: Error) =>
        /holds no valid whsec_\.\.\. value \(secret 1 of 1 .*\)/.test(error.message) &&
        !error.message.includes("c2hvcnQ"),
    );
    fake.secrets.set(ARN, SECRET);
    assert.equal(await webhookSecret(), SECRET);
  } finally {
    close();
  }
});

Deno.test("the previous version is signed with too, so either side of a rotation verifies", async () => {
  const { fake, close } = withFake({ [ARN]: ROTATED });
  try {
    fake.previous.set(ARN, SECRET);
    assert.equal(await webhookSecret(), `${ROTATED},${SECRET}`);
    forgetWebhookSecret();
    // A previous version that is not a secret (or the same one) is left out.
    fake.previous.set(ARN, "not a secret");
    assert.equal(await webhookSecret(), ROTATED);
    forgetWebhookSecret();
    fake.previous.set(ARN, ROTATED);
    assert.equal(await webhookSecret(), ROTATED);
    forgetWebhookSecret();
    // A current value that already holds two secrets is used as it is.
    fake.secrets.set(ARN, `${ROTATED},${SECRET}`);
    fake.previous.set(ARN, `whsec_${btoa("c".repeat(32))}`);
    assert.equal(await webhookSecret(), `${ROTATED},${SECRET}`);
  } finally {
    close();
  }
});

Deno.test("a refresh that fails keeps the value read before for a while, then fails", async () => {
  const { fake, close } = withFake({ [ARN]: SECRET });
  try {
    const now = Date.now();
    assert.equal(await webhookSecret(now), SECRET);
    fake.failing.add("AWSCURRENT");
    assert.equal(
      await webhookSecret(now + CACHE_MS + 1),
      SECRET,
      "Secrets Manager failing: the last value",
    );
    await assert.rejects(
      webhookSecret(now + STALE_MS + 1),
      /cannot read the webhook secret .* from Secrets Manager/,
      "past STALE_MS, none",
    );
    fake.failing.clear();
    assert.equal(await webhookSecret(now + STALE_MS + 2), SECRET, "read again once it answers");
  } finally {
    close();
  }
});

Deno.test("while a refresh fails, the value read before is served from memory, and asked for again a minute later", async () => {
  const { fake, close } = withFake({ [ARN]: SECRET });
  try {
    const now = Date.now();
    assert.equal(await webhookSecret(now), SECRET);
    fake.hanging.add("AWSCURRENT");
    const stale = now + CACHE_MS + 1;
    assert.equal(await webhookSecret(stale, 300), SECRET, "after a read that gave up");
    const reads = fake.reads.length;
    assert.equal(await webhookSecret(stale + 1, 300), SECRET);
    assert.equal(await webhookSecret(stale + RETRY_FAILED_READ_MS - 1, 300), SECRET);
    assert.equal(fake.reads.length, reads, "no read meanwhile: each would take its limit");
    fake.hanging.clear();
    fake.secrets.set(ARN, ROTATED);
    assert.equal(await webhookSecret(stale + RETRY_FAILED_READ_MS + 1, 5_000), ROTATED);
    // Never past STALE_MS: a refresh failing a moment before it is asked again after it.
    fake.hanging.add("AWSCURRENT");
    const read = stale + RETRY_FAILED_READ_MS + 1;
    assert.equal(await webhookSecret(read + STALE_MS - 1, 300), ROTATED);
    await assert.rejects(webhookSecret(read + STALE_MS + 1, 300), /no answer within 0\.3 s/);
  } finally {
    close();
  }
});

Deno.test("a failed read of the previous version signs with the current one alone", async () => {
  const { fake, close } = withFake({ [ARN]: SECRET });
  try {
    fake.previous.set(ARN, ROTATED);
    fake.failing.add("AWSPREVIOUS");
    assert.equal(await webhookSecret(), SECRET);
  } finally {
    close();
  }
});

Deno.test("a Secrets Manager that never answers fails the read within its limit, naming the secret", async () => {
  const { fake, close } = withFake({ [ARN]: SECRET });
  try {
    fake.hanging.add("AWSCURRENT");
    await assert.rejects(
      webhookSecret(Date.now(), 300),
      (error: Error) => {
        assert.equal(
          error.message,
          `cannot read the webhook secret ${ARN} from Secrets Manager: no answer within 0.3 s`,
        );
        return true;
      },
    );
    // Not cached: the next read, once it answers, gets the value (a limit a loaded
    // machine's round trip to the fake never reaches).
    fake.hanging.clear();
    assert.equal(await webhookSecret(Date.now(), 5_000), SECRET);
    // The previous version never answering leaves it out, within the limit.
    forgetWebhookSecret();
    fake.previous.set(ARN, ROTATED);
    fake.hanging.add("AWSPREVIOUS");
    assert.equal(await webhookSecret(Date.now(), 2_000), SECRET);
  } finally {
    close();
  }
});

Deno.test("after a 401 the value read before is not used again", async () => {
  const { fake, close } = withFake({ [ARN]: SECRET });
  try {
    const now = Date.now();
    assert.equal(await webhookSecret(now), SECRET);
    forgetWebhookSecret();
    fake.failing.add("AWSCURRENT");
    await assert.rejects(webhookSecret(now + 1), /cannot read the webhook secret/);
  } finally {
    close();
  }
});

Deno.test("a role its policy does not let read the secret fails naming the secret and IAM's cause", async () => {
  const { fake, close } = withFake({ [ARN]: SECRET });
  fake.readable.clear();
  try {
    const text = await webhookSecret().then(() => "read", (error: Error) => error.message);
    assert.match(
      text,
      /^cannot read the webhook secret arn:aws:secretsmanager:us-east-1:123456789012:secret:mmp-toledo\/webhook-AbCdEf from Secrets Manager: User: arn:aws:sts::.* is not authorized to perform: secretsmanager:GetSecretValue on resource: arn:aws:secretsmanager:/,
    );
    assert.ok(!text.includes(SECRET.slice(6)), "no secret value in the message");
    assert.deepEqual(fake.reads, [], "nothing was served");
    assert.ok(fake.refusals.includes("AccessDeniedException"), fake.refusals.join());
  } finally {
    close();
  }
});
