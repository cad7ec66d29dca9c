import assert from "node:assert/strict";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { FORWARDER_CREDENTIALS, startFakeSecretsManager } from "./secrets_manager.ts";

const ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mmp-toledo/webhook-AbCdEf";
const VALUE = `whsec_${btoa("a".repeat(32))}`;

/**
 * A fresh SDK client of `region` signing with `accessKeyId` and `secretAccessKey`, and the
 * role's session token unless another (or none: null) is given.
 */
function client(
  endpoint: string,
  region: string,
  accessKeyId: string,
  secretAccessKey: string,
  sessionToken: string | null = FORWARDER_CREDENTIALS.AWS_SESSION_TOKEN,
) {
  return new SecretsManagerClient({
    endpoint,
    region,
    credentials: { accessKeyId, secretAccessKey, sessionToken: sessionToken ?? undefined },
    maxAttempts: 1,
  });
}

/** The error name and message of reading `arn` with `sdk`, or "read" when it is served. */
async function read(sdk: SecretsManagerClient, arn = ARN): Promise<string> {
  try {
    const answer = await sdk.send(new GetSecretValueCommand({ SecretId: arn }));
    return `read ${answer.SecretString}`;
  } catch (error) {
    return `${(error as Error).name}: ${(error as Error).message}`;
  }
}

Deno.test("Secrets Manager serves only the forwarder's role, signed, and only the secret it may read", async () => {
  const fake = startFakeSecretsManager({ [ARN]: VALUE });
  const { AWS_ACCESS_KEY_ID: role, AWS_SECRET_ACCESS_KEY: secret } = FORWARDER_CREDENTIALS;
  try {
    assert.equal(await read(client(fake.endpoint, "us-east-1", role, secret)), `read ${VALUE}`);

    // Unsigned, a key it does not know, a signature the key's secret does not give.
    const unsigned = await fetch(fake.endpoint, {
      method: "POST",
      headers: { "x-amz-target": "secretsmanager.GetSecretValue" },
      body: JSON.stringify({ SecretId: ARN }),
    });
    assert.equal(unsigned.status, 400);
    assert.equal((await unsigned.json()).__type, "MissingAuthenticationTokenException");
    assert.equal(
      await read(client(fake.endpoint, "us-east-1", "AKIAUNKNOWNEXAMPLE", secret)),
      "UnrecognizedClientException: The security token included in the request is invalid.",
    );
    assert.match(
      await read(client(fake.endpoint, "us-east-1", role, "not-the-roles-secret")),
      /^InvalidSignatureException: The request signature we calculated does not match/,
    );
    // The role's temporary key without its session token, or with another.
    for (const token of [null, "another-session-token"]) {
      assert.equal(
        await read(client(fake.endpoint, "us-east-1", role, secret, token)),
        "UnrecognizedClientException: The security token included in the request is invalid.",
      );
    }

    // A secret the role's policy does not grant, existing or not.
    const other = ARN.replace("webhook-AbCdEf", "payroll-XyZ123");
    fake.secrets.set(other, "payroll");
    assert.equal(
      await read(client(fake.endpoint, "us-east-1", role, secret), other),
      "AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/" +
        "mmp-toledo-stream-forwarder/mmp-toledo-stream-forwarder is not authorized to " +
        `perform: secretsmanager:GetSecretValue on resource: ${other} because no ` +
        "identity-based policy allows the secretsmanager:GetSecretValue action",
    );

    // A region's endpoint holds that region's secrets only.
    assert.equal(
      await read(client(fake.endpoint, "us-west-2", role, secret)),
      "ResourceNotFoundException: Secrets Manager can't find the specified secret.",
    );
    assert.deepEqual(fake.refusals, [
      "MissingAuthenticationTokenException",
      "UnrecognizedClientException",
      "InvalidSignatureException",
      "UnrecognizedClientException",
      "UnrecognizedClientException",
      "AccessDeniedException",
    ]);
    assert.deepEqual(fake.reads, [ARN, ARN], "only the signed, granted requests were served");
  } finally {
    await fake.close();
  }
});
