/**
 * DynamoDB's JSON protocol as the functions' client speaks it (dynamo_http.ts): the
 * endpoint of a target's service, a request's JSON (binaries as base64), and an answer
 * read: its bytes checked against `x-amz-crc32`, its items' binaries decoded, or its error
 * (`{"__type": "...#Name", "message"}`) made a {@link DynamoError} that names the
 * operation and the table and says whether a retry may pass ("DynamoDB low-level API",
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.LowLevelAPI.html).
 *
 * @module
 */

import { attributeMapFromJson } from "./attribute_binaries.ts";
import type { Item, ResponseMetadata } from "./dynamo_commands.ts";
import { DynamoError, type RetryKind, retryKind } from "./dynamo_errors.ts";
import { crc32 } from "./crc32.ts";
import { bytesToBase64 } from "./dynamo_encoder.ts";

/** The decoded binaries of an answer's items, where answers hold items. */
export function withBinaries(body: Record<string, unknown>): Record<string, unknown> {
  const map = (value: unknown) =>
    value && typeof value === "object" ? attributeMapFromJson(value as Item) : value;
  for (const field of ["Item", "LastEvaluatedKey", "Attributes"]) {
    if (body[field] !== undefined) body[field] = map(body[field]);
  }
  if (Array.isArray(body.Items)) body.Items = body.Items.map(map);
  if (Array.isArray(body.Records)) {
    for (const record of body.Records as { dynamodb?: Record<string, unknown> }[]) {
      const images = record.dynamodb;
      if (!images) continue;
      for (const field of ["Keys", "NewImage", "OldImage"]) {
        if (images[field] !== undefined) images[field] = map(images[field]);
      }
    }
  }
  return body;
}

/** JSON of a request, binaries as base64 text. */
export function requestJson(input: unknown): string {
  return JSON.stringify(input, (_key, v) => v instanceof Uint8Array ? bytesToBase64(v) : v);
}

/**
 * The endpoint of `target`'s service: the configured one, else the region's DynamoDB or
 * DynamoDB Streams endpoint ("Amazon DynamoDB endpoints and quotas").
 */
export function serviceUrl(config: { region: string; endpoint?: string }, target: string): URL {
  if (config.endpoint) return new URL(config.endpoint);
  const host = target.startsWith("DynamoDBStreams_") ? "streams.dynamodb" : "dynamodb";
  const domain = config.region.startsWith("cn-") ? "amazonaws.com.cn" : "amazonaws.com";
  return new URL(`https://${host}.${config.region}.${domain}/`);
}

/** One answer's outcome, before retries are decided. */
export type Attempt =
  | { ok: true; body: Record<string, unknown>; metadata: ResponseMetadata }
  | { ok: false; error: DynamoError | Error; retry: RetryKind };

/** The operation of a target (`Scan`), and the table a request names, for messages. */
export function what(target: string, input: unknown): string {
  const operation = target.slice(target.indexOf(".") + 1);
  const { TableName, StreamArn } = (input ?? {}) as { TableName?: unknown; StreamArn?: unknown };
  const table = typeof TableName === "string"
    ? TableName
    : typeof StreamArn === "string"
    ? /:table\/([^/]+)\/stream\//.exec(StreamArn)?.[1]
    : undefined;
  return table ? `${operation} on ${table}` : operation;
}

/**
 * The outcome of an answer (`bytes`, all of its body) to a request `about` an operation:
 * its body, or the error it holds, with whether a retry may pass. `clockCorrected`: the
 * answer's `Date` just moved the clock requests are signed at, so a refusal for a skewed
 * clock is retried. `safe` takes the client's secrets out of a message the service wrote.
 */
export function answerOf(
  response: Response,
  bytes: Uint8Array,
  about: string,
  metadata: ResponseMetadata,
  clockCorrected: boolean,
  safe: (message: string) => string,
): Attempt {
  const sent = response.headers.get("x-amz-crc32");
  if (sent !== null && Number(sent) !== crc32(bytes)) {
    const message = `${about}: the answer does not match its x-amz-crc32 (damaged on the way)`;
    const error = new DynamoError("CRC32CheckFailed", message, metadata, "transient");
    return { ok: false, error, retry: "transient" };
  }
  const text = new TextDecoder().decode(bytes);
  let parsed: Record<string, unknown> | undefined;
  try {
    parsed = text === "" ? {} : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (response.ok && parsed) return { ok: true, body: parsed, metadata };
  const type = String(parsed?.__type ?? response.headers.get("x-amzn-errortype") ?? "");
  const name = type.slice(type.lastIndexOf("#") + 1).split(":")[0] ||
    (response.ok ? "SerializationException" : `HTTP${response.status}`);
  const said = parsed
    ? String(parsed.message ?? parsed.Message ?? `HTTP ${response.status}`)
    : `HTTP ${response.status} with a body that is not JSON`;
  const retry = retryKind(name, response.status, clockCorrected);
  const error = new DynamoError(name, `${about}: ${safe(said)}`, metadata, retry);
  return { ok: false, error, retry };
}
