/**
 * What S3 checks of a request before it reads or writes anything, and s3rver does not:
 * s3rver serves a request with no signature at all and takes any Signature Version 4
 * signature from a key it knows ("V4 signatures have incomplete support", its
 * lib/middleware/authentication.js). In front of it (local-stack/aws/s3_main.ts) each
 * request is refused as S3 refuses it (error codes from
 * https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList):
 *
 * - no `Authorization` header: `403 AccessDenied`. The export bucket is private, with
 *   public access blocked (Terraform's), so an anonymous request is never served;
 * - a signature of another kind than SigV4 in the header (SigV2's `AWS key:sig`):
 *   `400 InvalidRequest`, as in every region opened since 2014; a header that does not
 *   parse, a scope of another service, a scope's day not `x-amz-date`'s, or `host` not
 *   signed: `400 AuthorizationHeaderMalformed`;
 * - a key the stand-in does not know: `403 InvalidAccessKeyId`;
 * - `x-amz-date` more than 15 minutes from the stand-in's clock: `403
 *   RequestTimeTooSkewed` ("the request time and the server's time ... cannot be more
 *   than 15 minutes apart"). It answers with its `Date`, from which the SDK corrects
 *   its clock and retries;
 * - no `x-amz-content-sha256`: `400 InvalidRequest` (S3 requires it of every SigV4
 *   request: sig-v4-header-based-auth.html); one that is neither a SHA-256 in lower-case
 *   hex nor one of S3's keywords: `400 InvalidArgument`;
 * - a signature that is not the one the key's secret gives: `403 SignatureDoesNotMatch`;
 *   an `x-amz-*` header outside the signed ones: `403 AccessDenied` ("There were headers
 *   present in the request which were not signed");
 * - a body whose SHA-256 is not the one its `x-amz-content-sha256` declares: `400
 *   XAmzContentSHA256Mismatch`;
 * - a request to a bucket of another region than the one it was signed for: a HeadBucket
 *   (HEAD of the bucket) gets `301 PermanentRedirect` with `x-amz-bucket-region`, which
 *   the SDK follows when its client is made with `followRegionRedirects`; any other gets
 *   `400 AuthorizationHeaderMalformed` ("the region 'us-east-1' is wrong; expecting
 *   'eu-west-1'"), as S3 answers a request that DNS brought to the bucket's region
 *   signed for another (aws/aws-sdk-java-v2#4425), and which the SDK does not follow (its
 *   region redirect takes a 400 of HeadBucket only: @aws-sdk/middleware-sdk-s3's
 *   region-redirect-middleware.js, aws/aws-sdk-js-v3#6572). The stand-in's one address
 *   stands for the endpoint of the region each request is signed for.
 *
 * Not emulated, and not used by this project: presigned URLs (query-string signatures,
 * refused here with `403 AccessDenied`), and the streaming forms of the payload
 * (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`, `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`): the
 * request's signature is checked over the keyword, but neither the chunks' signatures nor
 * the trailing checksum. The request is handed on to s3rver by `fetch`, which drops the
 * `.` and `..` segments of a path (the signature is checked over the path as sent).
 *
 * @module
 */

import {
  checkSignature,
  pathAndQuery,
  requestWithBody,
  S3_MAX_SKEW_MS,
  sha256Hex,
  type SignatureProblem,
} from "./signature_v4.ts";
import { s3Error } from "./s3_errors.ts";
import { s3AccessDenied, s3Accesses, type S3Policy } from "./s3_iam.ts";
import { asKey, credentialOf } from "./scope.ts";

/** An `x-amz-content-sha256` that declares the body's hash (not a keyword for another form). */
const DECLARED_HASH = /^[0-9a-f]{64}$/;

/** The other values S3 takes for `x-amz-content-sha256` (sig-v4-header-based-auth.html). */
const PAYLOAD_KEYWORDS = new Set([
  "UNSIGNED-PAYLOAD",
  "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
  "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
  "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER",
]);

/** Who may call the stand-in, and where its buckets are. */
export interface S3AuthConfig {
  /** The secret of each access key id. */
  secrets: Record<string, string>;
  /**
   * The policy of each access key id that has one (the operator's exporter, s3_iam.ts);
   * any other key is unrestricted, as s3rver's own.
   */
  policies?: Record<string, S3Policy>;
  /**
   * The key a request allowed by its policy is handed on as (s3rver's own: it knows no
   * other, and serves a request with none as anonymous, which it treats otherwise).
   */
  ownKeyId?: string;
  /** The region of every bucket. */
  region: string;
  /** The stand-in's clock, in ms (tests move it). */
  now?: () => number;
}

/** S3's answer to a signature it refuses. */
function refusal(problem: SignatureProblem, req: Request, now: number): Response {
  const malformed = (why: string) =>
    s3Error(400, "AuthorizationHeaderMalformed", `The authorization header is malformed; ${why}`);
  switch (problem.kind) {
    case "unsigned":
      return s3Error(
        403,
        "AccessDenied",
        new URL(req.url).searchParams.has("X-Amz-Algorithm")
          ? "Access Denied (the S3 stand-in takes no presigned URLs)"
          : "Access Denied",
      );
    case "not SigV4":
      return s3Error(
        400,
        "InvalidRequest",
        "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
      );
    case "malformed":
      return malformed(
        "it is not AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...",
      );
    case "unknown key":
      return s3Error(
        403,
        "InvalidAccessKeyId",
        "The AWS Access Key Id you provided does not exist in our records.",
      );
    case "wrong service":
      return malformed(`incorrect service '${problem.service}'. This endpoint belongs to 's3'.`);
    case "host unsigned":
      return malformed("'host' must be a signed header.");
    case "no date":
      return s3Error(
        403,
        "AccessDenied",
        "AWS authentication requires a valid Date or x-amz-date header",
      );
    case "day not the date's":
      return malformed("Invalid credential date. Date is not the same as X-Amz-Date.");
    case "bad URI":
      return s3Error(400, "InvalidURI", "Couldn't parse the specified URI.");
    case "skewed":
      return s3Error(
        403,
        "RequestTimeTooSkewed",
        "The difference between the request time and the current time is too large.",
        { date: new Date(now).toUTCString() },
      );
    case "mismatch":
      return s3Error(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
      );
  }
}

/** Whether a path-style request's path names a bucket (not the service's own root). */
function namesBucket(path: string): boolean {
  return (path.split("/")[1] ?? "") !== "";
}

/**
 * Why S3 would refuse `req` (whose body, when it has one, is `body`), as its answer; or
 * null when S3 would go on to serve it.
 */
export function s3AuthRefusal(
  req: Request,
  body: Uint8Array | null,
  config: S3AuthConfig,
): Response | null {
  const now = (config.now ?? Date.now)();
  const payloadHash = req.headers.get("x-amz-content-sha256");
  // Required of every SigV4 request (sig-v4-header-based-auth.html).
  if (payloadHash === null && req.headers.get("authorization")?.startsWith("AWS4-HMAC-SHA256 ")) {
    return s3Error(
      400,
      "InvalidRequest",
      "Missing required header for this request: x-amz-content-sha256",
    );
  }
  if (
    payloadHash !== null && !DECLARED_HASH.test(payloadHash) && !PAYLOAD_KEYWORDS.has(payloadHash)
  ) {
    return s3Error(
      400,
      "InvalidArgument",
      "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING- keyword, or a valid sha256 value.",
    );
  }
  const checked = checkSignature(req, payloadHash ?? "", {
    secrets: config.secrets,
    service: "s3",
    now,
    maxSkewMs: S3_MAX_SKEW_MS,
  });
  if ("problem" in checked) return refusal(checked.problem, req, now);
  const unsigned = [...req.headers.keys()].filter((name) =>
    name.startsWith("x-amz-") && !checked.auth.signedHeaders.includes(name)
  );
  if (unsigned.length > 0) {
    return s3Error(
      403,
      "AccessDenied",
      `There were headers present in the request which were not signed: ${unsigned.join(", ")}`,
    );
  }
  if (DECLARED_HASH.test(payloadHash!) && sha256Hex(body ?? new Uint8Array()) !== payloadHash) {
    return s3Error(
      400,
      "XAmzContentSHA256Mismatch",
      "The provided 'x-amz-content-sha256' header does not match what was computed.",
    );
  }
  const path = pathAndQuery(req.url).path;
  if (namesBucket(path) && checked.auth.region !== config.region) {
    const headBucket = req.method === "HEAD" && path.split("/").filter(Boolean).length === 1;
    if (headBucket) {
      return s3Error(
        301,
        "PermanentRedirect",
        "The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.",
        { "x-amz-bucket-region": config.region },
      );
    }
    return s3Error(
      400,
      "AuthorizationHeaderMalformed",
      `The authorization header is malformed; the region '${checked.auth.region}' is wrong; ` +
        `expecting '${config.region}'`,
      { "x-amz-bucket-region": config.region },
    );
  }
  const policy = config.policies?.[checked.auth.accessKeyId];
  if (policy) {
    const { query } = pathAndQuery(req.url);
    const accesses = s3Accesses(
      req.method,
      path,
      query,
      req.headers.get("x-amz-copy-source"),
    );
    if (typeof accesses === "string") return s3Error(400, "InvalidRequest", accesses);
    const denied = s3AccessDenied(policy, accesses);
    if (denied !== null) return s3Error(403, "AccessDenied", denied);
  }
  return null;
}

/**
 * `handler` behind the checks of {@link s3AuthRefusal}. A body declared by its SHA-256 is
 * read whole to check it (S3 checks it before it stores anything), then handed on.
 */
export function authenticatedS3(
  handler: (req: Request) => Promise<Response>,
  config: S3AuthConfig,
): (req: Request) => Promise<Response> {
  return async (req) => {
    const declared = DECLARED_HASH.test(req.headers.get("x-amz-content-sha256") ?? "");
    const body = req.body !== null && declared ? new Uint8Array(await req.arrayBuffer()) : null;
    const refusal = s3AuthRefusal(req, body, config);
    if (refusal !== null) {
      if (body === null) await req.body?.cancel();
      return refusal;
    }
    // A key with a policy is s3rver's stranger: handed on as s3rver's own key (s3rver
    // checks no SigV4 signature beyond its key), not unsigned, which s3rver serves as an
    // anonymous request, refusing what S3 serves a signed one (response-* overrides).
    const keyId = credentialOf(req.headers)?.keyId;
    if (keyId !== undefined && config.policies?.[keyId] && config.ownKeyId) {
      const headers = asKey(req.headers, keyId, config.ownKeyId);
      const bodiless = req.method === "GET" || req.method === "HEAD";
      return await handler(
        new Request(req.url, {
          method: req.method,
          headers,
          ...(bodiless ? {} : { body: body ?? req.body }),
        }),
      );
    }
    return await handler(requestWithBody(req, body));
  };
}
