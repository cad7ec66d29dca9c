/**
 * A call from the DynamoDB stand-in to DynamoDB Local itself (no faults): the proxy's own
 * reads around a write, and the exports' reads (local-stack/aws/exports.ts).
 *
 * @module
 */

type Body = Record<string, unknown>;

/**
 * Calls `operation` on DynamoDB Local at `upstream` with `headers` (a client's: DynamoDB
 * Local keeps a database per access key and region, read from them); answers the JSON,
 * or throws an error with DynamoDB Local's answer.
 */
export async function callUpstream(
  upstream: string,
  headers: Headers,
  operation: string,
  body: Body,
): Promise<Body> {
  const forward = new Headers(headers);
  forward.set("x-amz-target", `DynamoDB_20120810.${operation}`);
  forward.delete("content-length");
  forward.delete("host");
  const response = await fetch(upstream, {
    method: "POST",
    headers: forward,
    body: JSON.stringify(body),
  });
  const json = await response.json();
  if (!response.ok) throw new Error(`${operation}: ${JSON.stringify(json)}`);
  return json;
}
