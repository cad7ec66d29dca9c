/**
 * AWS Signature Version 4, the one implementation of this repository: the canonical
 * request (method, the path as sent, the query sorted and encoded, the signed headers,
 * the payload's hash), the string to sign, and the key derived from the secret for the
 * day, region and service ("Create a signed AWS API request",
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html).
 * The functions' DynamoDB client signs with it (dynamo_http.ts); the local stand-ins of
 * S3 and DynamoDB check signatures with it (local-stack/aws/signature_v4.ts).
 *
 * @module
 */

import { createHash, createHmac } from "node:crypto";

/** What a request is signed over. */
export interface CanonicalParts {
  method: string;
  /** The path as sent, still percent-encoded. */
  path: string;
  /** The query as sent, without its `?`. */
  query: string;
  /** The value of each header, by lower-case name. */
  header: (name: string) => string | null;
  signedHeaders: string[];
  /** `x-amz-content-sha256`: a hex SHA-256, or `UNSIGNED-PAYLOAD`, or a streaming form. */
  payloadHash: string;
}

/** RFC 3986 encoding, as SigV4 wants for query names and values. */
function encodeRfc3986(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** A query's names and values decoded, encoded again, and sorted. */
function canonicalQuery(query: string): string {
  if (query === "") return "";
  return query.split("&").filter((part) => part !== "").map((part) => {
    const eq = part.indexOf("=");
    const name = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? "" : part.slice(eq + 1);
    return [encodeRfc3986(decodeURIComponent(name)), encodeRfc3986(decodeURIComponent(value))];
  }).sort(([a, x], [b, y]) => a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0)
    .map(([name, value]) => `${name}=${value}`).join("&");
}

/** The canonical request of `parts`. */
export function canonicalRequest(parts: CanonicalParts): string {
  const headers = parts.signedHeaders.map((name) =>
    // Sequential spaces (and tabs) as one, none at either end: nothing else is touched.
    `${name}:${(parts.header(name) ?? "").replace(/[ \t]+/g, " ").replace(/^ | $/g, "")}\n`
  ).join("");
  return [
    parts.method,
    parts.path === "" ? "/" : parts.path,
    canonicalQuery(parts.query),
    headers,
    parts.signedHeaders.join(";"),
    parts.payloadHash,
  ].join("\n");
}

/** Hex SHA-256 of `data`. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

function hmac(key: string | Uint8Array, data: string): Uint8Array {
  return createHmac("sha256", key).update(data).digest();
}

/**
 * The signature of `canonical`, made at `amzDate` (`YYYYMMDDTHHMMSSZ`) for the scope's
 * day, region and service with `secret`.
 */
export function signatureOf(
  canonical: string,
  amzDate: string,
  scope: { day: string; region: string; service: string },
  secret: string,
): string {
  const scopeText = `${scope.day}/${scope.region}/${scope.service}/aws4_request`;
  const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scopeText}\n${sha256Hex(canonical)}`;
  const key = [scope.day, scope.region, scope.service, "aws4_request"]
    .reduce<string | Uint8Array>((k, part) => hmac(k, part), `AWS4${secret}`);
  return createHmac("sha256", key).update(stringToSign).digest("hex");
}

/** `ms` as `YYYYMMDDTHHMMSSZ`. */
export function amzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, "");
}
