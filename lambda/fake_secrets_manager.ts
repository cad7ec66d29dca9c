/**
 * A stand-in for AWS Secrets Manager, for tests: AWS cannot run here. It speaks the
 * service's documented JSON 1.1 protocol for the one call the forwarder makes
 * (`POST /` with `X-Amz-Target: secretsmanager.GetSecretValue`, body `{"SecretId"}` and
 * optionally `"VersionStage"`, answer `{"ARN", "Name", "SecretString", "VersionId"}`, or a
 * `ResourceNotFoundException` for a secret, or a stage of it, that does not exist), so the
 * real AWS SDK talks to it when pointed there with `AWS_ENDPOINT_URL_SECRETS_MANAGER`.
 *
 * @module
 */

/** A running fake: its endpoint, the secrets it holds (change them to rotate), the calls. */
export interface FakeSecretsManager {
  endpoint: string;
  /** The AWSCURRENT version of each secret. */
  secrets: Map<string, string>;
  /** The AWSPREVIOUS version of a secret that has one. */
  previous: Map<string, string>;
  /** Every GetSecretValue call, in order: the SecretId, with " (STAGE)" when one was asked. */
  reads: string[];
  /** Stages ("AWSCURRENT", "AWSPREVIOUS") answered with a 500 InternalServiceError. */
  failing: Set<string>;
  /** Stages whose requests are taken and never answered (until the client gives up). */
  hanging: Set<string>;
  close(): Promise<void>;
}

/** Starts a fake Secrets Manager on a free loopback port holding `secrets` (ARN → value). */
export function startFakeSecretsManager(secrets: Record<string, string>): FakeSecretsManager {
  const held = new Map(Object.entries(secrets));
  const previous = new Map<string, string>();
  const reads: string[] = [];
  const failing = new Set<string>();
  const hanging = new Set<string>();
  const json = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/x-amz-json-1.1" },
    });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const target = req.headers.get("x-amz-target");
    if (req.method !== "POST" || target !== "secretsmanager.GetSecretValue") {
      return json(400, { __type: "UnknownOperationException", message: `${target}` });
    }
    const { SecretId, VersionStage } = await req.json();
    reads.push(VersionStage ? `${SecretId} (${VersionStage})` : SecretId);
    const stage = VersionStage ?? "AWSCURRENT";
    if (hanging.has(stage)) {
      await new Promise((resolve) => req.signal.addEventListener("abort", resolve));
      return json(500, { __type: "InternalServiceError", message: "the client left" });
    }
    if (failing.has(stage)) {
      return json(500, { __type: "InternalServiceError", message: "An error occurred (fake)" });
    }
    const value = stage === "AWSCURRENT"
      ? held.get(SecretId)
      : stage === "AWSPREVIOUS" && held.has(SecretId)
      ? previous.get(SecretId)
      : undefined;
    if (value === undefined) {
      return json(400, {
        __type: "ResourceNotFoundException",
        message: held.has(SecretId)
          ? `Secrets Manager can't find the specified secret value for staging label: ${stage}`
          : "Secrets Manager can't find the specified secret.",
      });
    }
    return json(200, {
      ARN: SecretId,
      Name: SecretId.split(":")[6],
      SecretString: value,
      VersionId: crypto.randomUUID(),
      VersionStages: [stage],
      CreatedDate: Date.now() / 1000,
    });
  });
  // It never keeps a test process alive by itself.
  server.unref();
  return {
    endpoint: `http://127.0.0.1:${server.addr.port}`,
    secrets: held,
    previous,
    reads,
    failing,
    hanging,
    close: () => server.shutdown(),
  };
}
