/**
 * The table a DynamoDB Streams request is about, as the DynamoDB stand-in reads it: from a
 * stream ARN (`...:table/<table>/stream/<label>`, its label the stream's creation time,
 * UTC), or from a shard iterator of DynamoDB Local, which starts with its stream's ARN.
 *
 * @module
 */

/** The stream ARN a shard iterator of DynamoDB Local starts with (`ARN|...`). */
export function streamOfIterator(iterator: string): string | undefined {
  const arn = iterator.split("|")[0];
  return arn.includes(":table/") ? arn : undefined;
}

/** The table of a stream ARN, and when the stream was created (its label, UTC), in ms. */
export function parseStreamArn(arn: string): { table: string; createdAt: number } | undefined {
  const match = /:table\/([^/]+)\/stream\/(.+)$/.exec(arn);
  if (!match) return undefined;
  const createdAt = Date.parse(`${match[2]}Z`);
  return { table: match[1], createdAt: Number.isNaN(createdAt) ? -Infinity : createdAt };
}
