/**
 * Calls from the DynamoDB stand-in to DynamoDB Local itself (no faults): the proxy's own
 * reads around a write, the exports' reads (local-stack/aws/exports.ts), and requests
 * passed on as they came.
 *
 * @module
 */

type Body = Record<string, unknown>;

/** DynamoDB Local's refusal of a call of the stand-in's own: its status and its answer. */
export class UpstreamError extends Error {
  constructor(operation: string, readonly status: number, readonly body: Body) {
    super(`${operation}: ${JSON.stringify(body)}`);
    this.name = "UpstreamError";
  }

  /** The error's type, after the `#` of its `__type` (e.g. ResourceNotFoundException). */
  get type(): string {
    return String(this.body?.__type ?? "").replace(/^.*#/, "");
  }
}

/**
 * Calls `operation` on DynamoDB Local at `upstream` with `headers` (a client's: DynamoDB
 * Local keeps a database per access key and region, read from them); answers the JSON,
 * or throws an {@link UpstreamError} with DynamoDB Local's answer.
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
  if (!response.ok) throw new UpstreamError(operation, response.status, json);
  return json;
}

/** `request` (its body already read as `body`) sent on to DynamoDB Local as it came. */
export async function passUpstream(
  upstream: string,
  request: Request,
  body: ArrayBuffer | undefined,
): Promise<Response> {
  const url = new URL(request.url);
  const headers = new Headers(request.headers);
  headers.delete("host");
  const response = await fetch(`${upstream}${url.pathname}${url.search}`, {
    method: request.method,
    headers,
    body: request.method === "GET" || request.method === "HEAD" ? undefined : body,
  });
  return relayed(response, await response.arrayBuffer());
}

/**
 * A client's table operation sent on to DynamoDB Local with its `headers` and `body` (as
 * the proxy may have changed it); DynamoDB Local's answer, unread.
 */
export function sendUpstream(
  upstream: string,
  headers: Headers,
  body: BodyInit | undefined,
): Promise<Response> {
  const forward = new Headers(headers);
  forward.delete("host");
  forward.delete("content-length");
  return fetch(upstream, { method: "POST", headers: forward, body });
}

/** DynamoDB Local's answer with `body` (read from it), without its framing headers. */
export function relayed(response: Response, body: BodyInit): Response {
  const out = new Headers(response.headers);
  out.delete("content-length");
  out.delete("transfer-encoding");
  return new Response(body, { status: response.status, headers: out });
}
