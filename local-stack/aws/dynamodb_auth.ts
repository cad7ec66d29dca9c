/**
 * What DynamoDB checks of a request before it serves it, and DynamoDB Local does not:
 * DynamoDB Local takes any credentials at all (it only files tables by access key and
 * region). In front of it, the stack's DynamoDB proxy (local-stack/aws/main.ts) refuses
 * each request as DynamoDB does, with HTTP 400 and the error types the AWS SDKs know
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html):
 *
 * - no `Authorization` header: `MissingAuthenticationTokenException`;
 * - a header that is not a SigV4 one DynamoDB can parse: `IncompleteSignatureException`;
 * - an access key the stack does not know: `UnrecognizedClientException` ("The security
 *   token included in the request is invalid");
 * - a scope of another service than `dynamodb` (DynamoDB Streams' is `dynamodb` too), a
 *   clock more than 5 minutes off (answered with the proxy's `Date`, from which the SDK
 *   corrects itself; signature_v4.ts, DYNAMODB_MAX_SKEW_MS), or a signature the key's
 *   secret does not give, over the request's body as sent: `InvalidSignatureException`.
 *
 * The same checks, worded the same, stand in for Secrets Manager's
 * (local-stack/aws/secrets_manager.ts, {@link signatureRefusal}).
 *
 * The scope's region is not checked against anything: the proxy's one address stands for
 * the endpoint of each region, and the region filed the tables (local-stack/aws/scope.ts).
 *
 * @module
 */

import { awsJsonAnswer } from "./json_answer.ts";
import {
  amzDate,
  checkSignature,
  DYNAMODB_MAX_SKEW_MS,
  requestWithBody,
  sha256Hex,
  type SignatureProblem,
} from "./signature_v4.ts";

/** Who may call the proxy. */
export interface DynamoAuthConfig {
  /** The secret of each access key id. */
  secrets: Record<string, string>;
  /** The proxy's clock, in ms (tests move it). */
  now?: () => number;
}

/** DynamoDB's answer to a request it does not authenticate. */
function refused(type: string, message: string, now: number): Response {
  const answer = awsJsonAnswer(400, { __type: `com.amazon.coral.service#${type}`, message });
  answer.headers.set("date", new Date(now).toUTCString());
  return answer;
}

/**
 * How an AWS JSON-protocol service (DynamoDB, Secrets Manager: the same front end) words
 * its refusal of a request signed for `service` whose signature `problem` has, at `now`
 * (ms): the error type and its message.
 */
export function signatureRefusal(
  problem: SignatureProblem,
  service: string,
  now: number,
): { type: string; message: string } {
  const invalid = (message: string) => ({ type: "InvalidSignatureException", message });
  switch (problem.kind) {
    case "unsigned":
      return {
        type: "MissingAuthenticationTokenException",
        message: "Request is missing Authentication Token",
      };
    case "not SigV4":
    case "malformed":
    case "no date":
      return {
        type: "IncompleteSignatureException",
        message: "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' " +
          "parameters, and the request a valid 'X-Amz-Date' header, signed with AWS4-HMAC-SHA256.",
      };
    case "unknown key":
      return {
        type: "UnrecognizedClientException",
        message: "The security token included in the request is invalid.",
      };
    case "wrong service":
      return invalid(`Credential should be scoped to correct service: '${service}'. `);
    case "host unsigned":
      return invalid("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
    case "bad URI":
      return invalid("The request's URI could not be decoded.");
    case "day not the date's":
      return invalid(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.",
      );
    case "skewed":
      return invalid(
        problem.signedAt < now
          ? `Signature expired: ${amzDate(problem.signedAt)} is now earlier than ${
            amzDate(now - DYNAMODB_MAX_SKEW_MS)
          } (${amzDate(now)} - 5 min.)`
          : `Signature not yet current: ${amzDate(problem.signedAt)} is still later than ${
            amzDate(now + DYNAMODB_MAX_SKEW_MS)
          } (${amzDate(now)} + 5 min.)`,
      );
    case "mismatch":
      return invalid(
        "The request signature we calculated does not match the signature you provided. " +
          "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
      );
  }
}

/**
 * Why DynamoDB would refuse `req`, whose body is `body`, as its answer; or null when it
 * would serve it.
 */
export function dynamoAuthRefusal(
  req: Request,
  body: Uint8Array,
  config: DynamoAuthConfig,
): Response | null {
  const now = (config.now ?? Date.now)();
  const checked = checkSignature(req, sha256Hex(body), {
    secrets: config.secrets,
    service: "dynamodb",
    now,
    maxSkewMs: DYNAMODB_MAX_SKEW_MS,
  });
  if (!("problem" in checked)) return null;
  const { type, message } = signatureRefusal(checked.problem, "dynamodb", now);
  return refused(type, message, now);
}

/**
 * `handler` behind the checks of {@link dynamoAuthRefusal}; the body, read whole to check
 * its hash, is handed on with the request.
 */
export function authenticatedDynamo(
  handler: (req: Request) => Promise<Response>,
  config: DynamoAuthConfig,
): (req: Request) => Promise<Response> {
  return async (req) => {
    const body = new Uint8Array(await req.arrayBuffer());
    const refusal = dynamoAuthRefusal(req, body, config);
    if (refusal !== null) return refusal;
    return await handler(requestWithBody(req, body));
  };
}
