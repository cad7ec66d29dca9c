/**
 * GetShardIterator for a shard of a stream's lineage (shard_lineage.ts), as the stream
 * shards' proxy hook (stream_shards.ts) answers it: a sequence number outside the shard is
 * a ValidationException, LATEST of a closed shard is its end, TRIM_HORIZON starts at the
 * shard's first record; otherwise DynamoDB Local's own iterator of the real shard beneath,
 * wrapped to carry the shard it reads (shard_iterators.ts).
 *
 * @module
 */

import { awsError, awsJsonAnswer } from "./json_answer.ts";
import { inRange, type Lineage } from "./shard_lineage.ts";
import { endedIterator, wrapIterator } from "./shard_iterators.ts";
import { withBody } from "./request_body.ts";

type Next = (request: Request) => Promise<Response>;
type Body = Record<string, unknown>;

/**
 * The answer to GetShardIterator `body` for a shard of `lineage`; a shard the lineage does
 * not hold (a real shard closed before it) is DynamoDB Local's to answer, through `next`.
 */
export async function lineageIterator(
  request: Request,
  body: Body,
  lineage: Lineage,
  now: number,
  next: Next,
): Promise<Response> {
  const streamArn = String(body.StreamArn);
  const shard = lineage.shards.find((s) => s.id === body.ShardId);
  // A real shard closed before the lineage (or none): DynamoDB Local's to answer.
  if (!shard) return await next(withBody(request, JSON.stringify(body)));
  const type = String(body.ShardIteratorType);
  const seq = typeof body.SequenceNumber === "string" ? body.SequenceNumber : undefined;
  if (seq !== undefined && /^\d+$/.test(seq) && !inRange(shard, seq)) {
    return awsError(
      "ValidationException",
      `Invalid SequenceNumber ${seq} for shard ${shard.id}: it holds records after ` +
        `${shard.after}${shard.through ? ` through ${shard.through}` : ""}`,
    );
  }
  if (type === "LATEST" && shard.through !== undefined) {
    return awsJsonAnswer(200, {
      ShardIterator: endedIterator(streamArn, shard.id, now),
    });
  }
  const real: Body = { ...body, ShardId: shard.real };
  // A shard DynamoDB Local's rollover opened starts at its real shard's first record
  // (`after`, the old real shard's end, is no number of this one).
  const parentReal = lineage.shards.find((s) => s.id === shard.parent)?.real;
  const fromRealStart = shard.after === "0" ||
    (parentReal !== undefined && parentReal !== shard.real);
  if (type === "TRIM_HORIZON" && !fromRealStart) {
    Object.assign(real, {
      ShardIteratorType: "AFTER_SEQUENCE_NUMBER",
      SequenceNumber: shard.after,
    });
  }
  let response = await next(withBody(request, JSON.stringify(real)));
  if (real.ShardIteratorType !== type && response.status === 400) {
    // The shard's start is trimmed: the real shard's horizon starts after the trim.
    const error = await response.clone().json() as { __type?: string };
    if (String(error.__type).endsWith("TrimmedDataAccessException")) {
      const horizon = { ...body, ShardId: shard.real };
      response = await next(withBody(request, JSON.stringify(horizon), true));
    }
  }
  if (!response.ok) return response;
  const { ShardIterator } = await response.json() as { ShardIterator: string };
  return awsJsonAnswer(
    200,
    { ShardIterator: wrapIterator(ShardIterator, shard.id) },
    response.headers,
  );
}
