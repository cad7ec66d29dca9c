/**
 * The requests around local-stack/aws/stream_shards.ts: its control request (read and
 * checked), and the requests it makes of its own to DynamoDB Local (those on behalf of a
 * client's are request_body.ts's `withBody`, marked with errors.ts's FOLLOW_UP_HEADER).
 *
 * @module
 */

import { STREAMS_TARGET } from "./operations.ts";

/** The control path. */
export const SHARDS_PATH = "/__local/streams/shards";

/** What a control request asks: close `streamArn`'s open shards, `split` children each. */
export interface CloseRequest {
  streamArn: string;
  region: string;
  split: number;
}

/** The control request's body, or the answer that refuses it. */
export async function readCloseRequest(request: Request): Promise<CloseRequest | Response> {
  if (request.method !== "POST") return new Response("POST only\n", { status: 405 });
  let body: { streamArn?: unknown; region?: unknown; split?: unknown };
  try {
    body = await request.json();
  } catch {
    return Response.json({ error: "the body is not JSON" }, { status: 400 });
  }
  const { streamArn, region, split = 1 } = body ?? {};
  if (typeof streamArn !== "string" || typeof region !== "string") {
    return Response.json(
      { error: "streamArn (a stream's ARN) and region (its table's) are required" },
      { status: 400 },
    );
  }
  if (!Number.isInteger(split) || (split as number) < 1 || (split as number) > 4) {
    return Response.json({ error: "split must be 1 to 4 children a shard" }, { status: 400 });
  }
  return { streamArn, region, split: split as number };
}

/**
 * A DynamoDB Streams request of the stand-in's own, in `region`'s database of the
 * stack's key (DynamoDB Local keeps one per access key and region; signatures are checked
 * before the stand-in, and DynamoDB Local reads only the scope).
 */
export function ownRequest(
  url: string,
  accessKeyId: string,
  region: string,
  operation: string,
  input: unknown,
): Request {
  const day = new Date().toISOString().slice(0, 10).replaceAll("-", "");
  return new Request(new URL("/", url), {
    method: "POST",
    headers: {
      "x-amz-target": `${STREAMS_TARGET}${operation}`,
      "content-type": "application/x-amz-json-1.0",
      authorization: `AWS4-HMAC-SHA256 Credential=${accessKeyId}/${day}/${region}/dynamodb/` +
        "aws4_request, SignedHeaders=host, Signature=0",
    },
    body: JSON.stringify(input),
  });
}
