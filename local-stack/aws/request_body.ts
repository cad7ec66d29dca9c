/**
 * A request the proxy passes on with another body: what its edges (region_arns.ts,
 * sequence_edge.ts) and the shards' stand-in (stream_shards.ts) forward after rewriting
 * what a client sent.
 *
 * @module
 */

import { FOLLOW_UP_HEADER } from "./errors.ts";

/**
 * `request` with `body` (its length left to be set again from it), keeping the client's
 * abort signal, marked as a follow-up when `followUp`.
 */
export function withBody(
  request: Request,
  body: Uint8Array<ArrayBuffer> | string,
  followUp = false,
): Request {
  const headers = new Headers(request.headers);
  headers.delete("content-length");
  if (followUp) headers.set(FOLLOW_UP_HEADER, "1");
  return new Request(request.url, {
    method: request.method,
    headers,
    body,
    signal: request.signal,
  });
}
