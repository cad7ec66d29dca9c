/**
 * AWS Signature Version 4 as a service computes it for a request signed in its
 * `Authorization` header ("Signature Calculations for the Authorization Header:
 * Transferring Payload in a Single Chunk",
 * https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html): the
 * canonical request (method, the path as sent, the query sorted and encoded, the signed
 * headers, the payload's hash), the string to sign, and the key derived from the secret
 * for the day, region and service; and {@link checkSignature}, what the S3 and DynamoDB
 * stand-ins check of a request before they serve it (s3_auth.ts, dynamodb_auth.ts), each
 * answering its problems in its service's own words. The path is taken as sent: S3 does
 * not encode it a second time, and DynamoDB's is always `/`.
 *
 * @module
 */

import {
  amzDate,
  type CanonicalParts,
  canonicalRequest,
  sha256Hex,
  signatureOf,
} from "../../functions-shared/aws_signature.ts";

export { amzDate, type CanonicalParts, canonicalRequest, sha256Hex, signatureOf };

/** The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header. */
export interface SignedAuthorization {
  accessKeyId: string;
  /** The scope's day, `YYYYMMDD`. */
  day: string;
  region: string;
  service: string;
  /** Lower-case header names, in the header's order. */
  signedHeaders: string[];
  signature: string;
}

const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;_.-]+),\s*Signature=([0-9a-f]{64})$/;

/** The header's parts, or null when it is not a SigV4 header S3 would parse. */
export function parseAuthorization(value: string): SignedAuthorization | null {
  const match = AUTHORIZATION.exec(value.trim());
  if (!match) return null;
  const [, accessKeyId, day, region, service, headers, signature] = match;
  return { accessKeyId, day, region, service, signedHeaders: headers.split(";"), signature };
}

/**
 * The path and the query of `url` as the client sent them: a URL parsed again loses the
 * `.` and `..` segments of a path, which S3 keys may hold and the SDK signs as they are
 * (a server's `Request.url` keeps the request line's path as it came).
 */
export function pathAndQuery(url: string): { path: string; query: string } {
  const afterScheme = url.indexOf("://");
  const slash = url.indexOf("/", afterScheme < 0 ? 0 : afterScheme + 3);
  const rest = slash < 0 ? "/" : url.slice(slash);
  const mark = rest.indexOf("?");
  return mark < 0
    ? { path: rest, query: "" }
    : { path: rest.slice(0, mark), query: rest.slice(mark + 1) };
}

/**
 * `req` again, with `body` (read whole to check its hash) in place of its stream; one
 * without a body stays without.
 */
export function requestWithBody(
  req: Request,
  body: Uint8Array<ArrayBuffer> | null,
): Request {
  if (body === null || req.method === "GET" || req.method === "HEAD") return req;
  return new Request(req.url, { method: req.method, headers: req.headers, body });
}

/**
 * How far S3 lets a request's `x-amz-date` be from its clock: 15 minutes ("The difference
 * between the request time and the current time is too large", RequestTimeTooSkewed;
 * "The signed portions of requests are valid within 15 minutes of the timestamp in the
 * request", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-signing-elements.html).
 */
export const S3_MAX_SKEW_MS = 15 * 60_000;

/**
 * How far DynamoDB lets it be: 5 minutes, the shorter of the two windows its own answers
 * have been seen to state ("Signature expired: ... (... - 5 min.)" on the first DynamoDB
 * request of a Lambda thawed after minutes, https://github.com/aws/aws-sdk-js-v3/issues/7605;
 * "- 15 min." in older reports): a stand-in is never kinder than the service.
 */
export const DYNAMODB_MAX_SKEW_MS = 5 * 60_000;

/** What the check needs of the service. */
export interface SignatureCheck {
  /** The secret of each access key id the service knows. */
  secrets: Record<string, string>;
  /** The service's name in the credential scope (`s3`, `dynamodb`). */
  service: string;
  /** The service's clock, in ms. */
  now: number;
  /** How far `x-amz-date` may be from `now`. */
  maxSkewMs: number;
}

/** Why a request's signature is refused, for the service to answer in its own words. */
export type SignatureProblem =
  | { kind: "unsigned" }
  | { kind: "not SigV4" }
  | { kind: "malformed" }
  | { kind: "unknown key"; accessKeyId: string }
  | { kind: "wrong service"; service: string }
  | { kind: "host unsigned" }
  | { kind: "no date" }
  | { kind: "day not the date's" }
  | { kind: "skewed"; signedAt: number }
  | { kind: "bad URI" }
  | { kind: "mismatch" };

/** `YYYYMMDDTHHMMSSZ` as a time in ms, or NaN. */
export function amzDateMs(value: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  return m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) : NaN;
}

/**
 * Whether `req`, whose payload hashes to `payloadHash` (S3: its `x-amz-content-sha256`;
 * other services: the SHA-256 of its body), is signed by a key `check` knows, within
 * `check.maxSkewMs` of its clock: the signed scope (`auth`), or the problem.
 */
export function checkSignature(
  req: Request,
  payloadHash: string,
  check: SignatureCheck,
): { auth: SignedAuthorization } | { problem: SignatureProblem } {
  const header = req.headers.get("authorization");
  if (header === null) return { problem: { kind: "unsigned" } };
  if (!header.startsWith("AWS4-HMAC-SHA256 ")) return { problem: { kind: "not SigV4" } };
  const auth = parseAuthorization(header);
  if (auth === null) return { problem: { kind: "malformed" } };
  const secret = check.secrets[auth.accessKeyId];
  if (secret === undefined) {
    return { problem: { kind: "unknown key", accessKeyId: auth.accessKeyId } };
  }
  if (auth.service !== check.service) {
    return { problem: { kind: "wrong service", service: auth.service } };
  }
  if (!auth.signedHeaders.includes("host")) return { problem: { kind: "host unsigned" } };
  const date = req.headers.get("x-amz-date") ?? "";
  const signedAt = amzDateMs(date);
  if (Number.isNaN(signedAt)) return { problem: { kind: "no date" } };
  if (date.slice(0, 8) !== auth.day) return { problem: { kind: "day not the date's" } };
  if (Math.abs(check.now - signedAt) > check.maxSkewMs) {
    return { problem: { kind: "skewed", signedAt } };
  }
  const target = pathAndQuery(req.url);
  let canonical: string;
  try {
    canonical = canonicalRequest({
      method: req.method,
      path: target.path,
      query: target.query,
      header: (name) => req.headers.get(name),
      signedHeaders: auth.signedHeaders,
      payloadHash,
    });
  } catch {
    return { problem: { kind: "bad URI" } }; // a query's `%` that decodes to nothing
  }
  const expected = signatureOf(canonical, date, auth, secret);
  return expected === auth.signature ? { auth } : { problem: { kind: "mismatch" } };
}
