/**
 * An answer in DynamoDB's JSON protocol from the local stack's own code (not DynamoDB
 * Local's): `application/x-amz-json-1.0` with the `x-amz-crc32` of its body, which the
 * SDK checks, and a request id.
 *
 * @module
 */

import { crc32 } from "../../functions-shared/crc32.ts";

/**
 * JSON `text` as DynamoDB would answer it, keeping `headers` (an upstream answer's) but
 * its length, and its request id when it has one.
 */
export function awsJsonText(status: number, text: string, headers?: Headers): Response {
  const out = new Headers(headers);
  out.delete("content-length");
  out.delete("transfer-encoding");
  out.set("content-type", "application/x-amz-json-1.0");
  out.set("x-amz-crc32", String(crc32(text)));
  if (!out.has("x-amzn-requestid")) out.set("x-amzn-requestid", crypto.randomUUID());
  return new Response(text, { status, headers: out });
}

/** `body` as DynamoDB would answer it (see {@link awsJsonText}). */
export function awsJsonAnswer(status: number, body: unknown, headers?: Headers): Response {
  return awsJsonText(status, JSON.stringify(body), headers);
}

/** A DynamoDB error answer: HTTP 400 with `__type` and `message`, as AWS sends one. */
export function awsError(type: string, message: string, status = 400): Response {
  return awsJsonAnswer(status, { __type: `com.amazonaws.dynamodb.v20120810#${type}`, message });
}
