/**
 * A stand-in for AWS Secrets Manager, for tests: AWS cannot run here. It speaks the
 * service's documented JSON 1.1 protocol for the one call the forwarder makes
 * (`POST /` with `X-Amz-Target: secretsmanager.GetSecretValue`, body `{"SecretId"}` and
 * optionally `"VersionStage"`, answer `{"ARN", "Name", "SecretString", "VersionId"}`, or a
 * `ResourceNotFoundException` for a secret, or a stage of it, that does not exist), so the
 * real AWS SDK talks to it when pointed there with `AWS_ENDPOINT_URL_SECRETS_MANAGER`.
 *
 * It is no kinder than the service about who asks:
 * - every request must be signed (SigV4, scope `secretsmanager`, within 5 minutes) by the
 *   one key it knows, the forwarder's role's; refusals are worded as DynamoDB's, the same
 *   AWS JSON front end (dynamodb_auth.ts `signatureRefusal`; Secrets Manager's common
 *   errors, https://docs.aws.amazon.com/secretsmanager/latest/apireference/CommonErrors.html);
 * - the role may read only the secrets in `readable`, as the Lambda's policy grants
 *   `secretsmanager:GetSecretValue` on its one secret (infrastructure/terraform/modules/
 *   stream-sync/main.tf, `ReadTheWebhookSecret`); any other is `AccessDeniedException`
 *   (HTTP 400), worded as IAM's ("User: ... is not authorized to perform: ... on resource:
 *   ... because no identity-based policy allows the ... action");
 * - Secrets Manager is regional: a secret of another region than the request's scope (the
 *   endpoint it was sent to) is not found.
 *
 * @module
 */

import { signatureRefusal } from "./dynamodb_auth.ts";
import { checkSignature, DYNAMODB_MAX_SKEW_MS, sha256Hex } from "./signature_v4.ts";

/**
 * The forwarder's role's credentials, as Lambda puts them in its environment: temporary
 * ones (an `ASIA` key), which AWS takes only with their session token
 * (`X-Amz-Security-Token`); without it, or with another, a request is refused as
 * UnrecognizedClientException, "The security token included in the request is invalid."
 */
export const FORWARDER_CREDENTIALS = {
  AWS_ACCESS_KEY_ID: "ASIAFORWARDEREXAMPLE",
  AWS_SECRET_ACCESS_KEY: "forwarder-role-secret-example",
  AWS_SESSION_TOKEN: "forwarder-role-session-token-example",
} as const;

/** Who the forwarder's role is, as IAM names it in a refusal. */
export const FORWARDER_ROLE_SESSION =
  "arn:aws:sts::123456789012:assumed-role/mmp-toledo-stream-forwarder/mmp-toledo-stream-forwarder";

/** A running fake: its endpoint, the secrets it holds (change them to rotate), the calls. */
export interface FakeSecretsManager {
  endpoint: string;
  /** The AWSCURRENT version of each secret. */
  secrets: Map<string, string>;
  /** The AWSPREVIOUS version of a secret that has one. */
  previous: Map<string, string>;
  /** The secrets (ARNs) the forwarder's role may read: at first, those it started with. */
  readable: Set<string>;
  /** Every GetSecretValue call served, in order: the SecretId, with " (STAGE)" when one was asked. */
  reads: string[];
  /** Every request refused before it was served: the error type. */
  refusals: string[];
  /** Stages ("AWSCURRENT", "AWSPREVIOUS") answered with a 500 InternalServiceError. */
  failing: Set<string>;
  /** Stages whose requests are taken and never answered (until the client gives up). */
  hanging: Set<string>;
  close(): Promise<void>;
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/x-amz-json-1.1" },
  });
}

/** Starts a fake Secrets Manager on a free loopback port holding `secrets` (ARN → value). */
export function startFakeSecretsManager(secrets: Record<string, string>): FakeSecretsManager {
  const held = new Map(Object.entries(secrets));
  const previous = new Map<string, string>();
  const readable = new Set(Object.keys(secrets));
  const reads: string[] = [];
  const refusals: string[] = [];
  const failing = new Set<string>();
  const hanging = new Set<string>();
  const refuse = (type: string, message: string) => {
    refusals.push(type);
    return json(400, { __type: type, message });
  };
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const body = new Uint8Array(await req.arrayBuffer());
    const now = Date.now();
    const checked = checkSignature(req, sha256Hex(body), {
      secrets: {
        [FORWARDER_CREDENTIALS.AWS_ACCESS_KEY_ID]: FORWARDER_CREDENTIALS.AWS_SECRET_ACCESS_KEY,
      },
      service: "secretsmanager",
      now,
      maxSkewMs: DYNAMODB_MAX_SKEW_MS,
    });
    if ("problem" in checked) {
      const { type, message } = signatureRefusal(checked.problem, "secretsmanager", now);
      return refuse(type, message);
    }
    if (req.headers.get("x-amz-security-token") !== FORWARDER_CREDENTIALS.AWS_SESSION_TOKEN) {
      return refuse(
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
      );
    }
    const target = req.headers.get("x-amz-target");
    if (req.method !== "POST" || target !== "secretsmanager.GetSecretValue") {
      return refuse("UnknownOperationException", `${target}`);
    }
    const { SecretId, VersionStage } = JSON.parse(new TextDecoder().decode(body));
    const arn = String(SecretId);
    if (!readable.has(arn)) {
      return refuse(
        "AccessDeniedException",
        `User: ${FORWARDER_ROLE_SESSION} is not authorized to perform: ` +
          `secretsmanager:GetSecretValue on resource: ${arn} because no identity-based ` +
          `policy allows the secretsmanager:GetSecretValue action`,
      );
    }
    const here = arn.split(":")[3] === checked.auth.region;
    reads.push(VersionStage ? `${arn} (${VersionStage})` : arn);
    const stage = VersionStage ?? "AWSCURRENT";
    if (hanging.has(stage)) {
      await new Promise((resolve) => req.signal.addEventListener("abort", resolve));
      return json(500, { __type: "InternalServiceError", message: "the client left" });
    }
    if (failing.has(stage)) {
      return json(500, { __type: "InternalServiceError", message: "An error occurred (fake)" });
    }
    const value = !here
      ? undefined
      : stage === "AWSCURRENT"
      ? held.get(arn)
      : stage === "AWSPREVIOUS" && held.has(arn)
      ? previous.get(arn)
      : undefined;
    if (value === undefined) {
      return json(400, {
        __type: "ResourceNotFoundException",
        message: here && held.has(arn)
          ? `Secrets Manager can't find the specified secret value for staging label: ${stage}`
          : "Secrets Manager can't find the specified secret.",
      });
    }
    return json(200, {
      ARN: arn,
      Name: arn.split(":")[6],
      SecretString: value,
      VersionId: crypto.randomUUID(),
      VersionStages: [stage],
      CreatedDate: now / 1000,
    });
  });
  // It never keeps a test process alive by itself.
  server.unref();
  return {
    endpoint: `http://127.0.0.1:${server.addr.port}`,
    secrets: held,
    previous,
    readable,
    reads,
    refusals,
    failing,
    hanging,
    close: () => server.shutdown(),
  };
}
