/**
 * CRC-32 (IEEE), as DynamoDB sends in `x-amz-crc32` over the response body's bytes: the
 * functions' client checks it (dynamo_http.ts), and the local DynamoDB proxy recomputes
 * it whenever it rewrites a body. Node's `zlib.crc32`, native in Deno and in Supabase's
 * Edge Runtime (its node polyfill calls zlib's own, ext/node/polyfills/zlib.ts of
 * github.com/supabase/edge-runtime): a table in JavaScript took 3.2–3.7 ms a 1 MB page,
 * about a tenth of a page's CPU in the import-worker; this takes 0.03 ms.
 *
 * @module
 */

import { crc32 as zlibCrc32 } from "node:zlib";

/** The CRC-32 of bytes (a text: of its UTF-8 bytes), as an unsigned number. */
export function crc32(data: string | Uint8Array): number {
  return zlibCrc32(data) >>> 0;
}
