/**
 * CRC-32 (IEEE), as DynamoDB sends in `x-amz-crc32` over the response body's bytes: the
 * functions' client checks it (dynamo_http.ts), and the local DynamoDB proxy recomputes
 * it whenever it rewrites a body. Node's `zlib.crc32`, native in Deno and in Supabase's
 * Edge Runtime (its node polyfill calls zlib's own, ext/node/polyfills/zlib.ts of
 * github.com/supabase/edge-runtime): a table in JavaScript took 3.2–3.7 ms a 1 MB page,
 * about a tenth of a page's CPU in the import-worker; this takes 0.03 ms.
 *
 * The Edge Runtime is built on Deno 2.1.4, whose `zlib.crc32` throws "isArrayBufferView is
 * not defined" for any bytes (denoland/deno#27774, fixed in Deno 2.1.8); Supabase patched
 * its copy (supabase/edge-runtime 6db5cb5d, "fix(ext/node): reference error in
 * zlib.crc32", #577). So the isolates here run on the tools' newer Deno, not on a plain
 * 2.1.4, which would fail where hosted does not.
 *
 * @module
 */

import { crc32 as zlibCrc32 } from "node:zlib";

/** The CRC-32 of bytes (a text: of its UTF-8 bytes), as an unsigned number. */
export function crc32(data: string | Uint8Array): number {
  return zlibCrc32(data) >>> 0;
}
