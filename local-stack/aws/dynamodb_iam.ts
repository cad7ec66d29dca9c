/**
 * The DynamoDB proxy's IAM: each authenticated request of a key with a policy (the
 * functions' reader and writer, local-stack/aws/iam_policies.ts) is evaluated against it
 * before anything else serves it, and refused with HTTP 400 `AccessDeniedException` when
 * no statement allows it. One allowed is passed on as the stack's own key's: DynamoDB
 * Local keeps a database per access key, and the tables are the stack's. The key that
 * signed it goes on in `SIGNED_BY_HEADER` (scope.ts), for the export stand-in.
 *
 * Runs behind the signature check (dynamodb_auth.ts): IAM evaluates who signed.
 *
 * @module
 */

import { accessDenied, type Identity } from "./iam_policies.ts";
import { accessRequest } from "./iam_request.ts";
import { awsJsonAnswer } from "./json_answer.ts";
import { asKey, credentialOf, SIGNED_BY_HEADER } from "./scope.ts";
import { requestWithBody } from "./signature_v4.ts";

/** Who has a policy, and whose database they use. */
export interface DynamoIamConfig {
  /** The policy of each access key id that has one; any other key is unrestricted. */
  identities: Readonly<Record<string, Identity>>;
  /** The access key id whose DynamoDB Local database every identity uses (the stack's). */
  databaseKeyId: string;
}

/** DynamoDB's answer to a request refused before it is served (IAM's, the body's). */
function refused(type: string, message: string): Response {
  return awsJsonAnswer(400, { __type: `com.amazon.coral.service#${type}`, message });
}

/** `handler` behind IAM: requests of keys with a policy evaluated, then sent as the stack's. */
export function authorizedDynamo(
  handler: (req: Request) => Promise<Response>,
  config: DynamoIamConfig,
): (req: Request) => Promise<Response> {
  return async (req) => {
    if (req.headers.has(SIGNED_BY_HEADER)) {
      // Only this layer says who signed: a client's own claim is dropped.
      const headers = new Headers(req.headers);
      headers.delete(SIGNED_BY_HEADER);
      req = requestWithBody(
        new Request(req.url, { method: req.method, headers }),
        new Uint8Array(await req.arrayBuffer()),
      );
    }
    const credential = credentialOf(req.headers);
    const identity = credential && config.identities[credential.keyId];
    if (!credential || identity === undefined) return await handler(req);
    const { keyId, region } = credential;
    const body = new Uint8Array(await req.arrayBuffer());
    const asStack = () => {
      const headers = asKey(req.headers, keyId, config.databaseKeyId);
      headers.set(SIGNED_BY_HEADER, keyId);
      return requestWithBody(new Request(req.url, { method: req.method, headers }), body);
    };
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder().decode(body));
    } catch {
      parsed = undefined;
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      // DynamoDB refuses a body that is not one JSON object before it reads any table
      // (SerializationException); DynamoDB Local runs the object before trailing bytes,
      // so passed on, a key's refused write would be written.
      return refused("SerializationException", "the request body is not one JSON object");
    }
    const target = req.headers.get("x-amz-target") ?? "";
    const refusal = accessDenied(
      identity,
      accessRequest(target, parsed as Record<string, unknown>, region),
    );
    if (refusal !== null) return refused("AccessDeniedException", refusal);
    return await handler(asStack());
  };
}
