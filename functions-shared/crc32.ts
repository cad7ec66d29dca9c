/**
 * CRC-32 (IEEE), as DynamoDB sends in `x-amz-crc32` over the response body's bytes: the
 * functions' client checks it (dynamo_http.ts), as the AWS SDK does, and the local
 * DynamoDB proxy recomputes it whenever it rewrites a body.
 *
 * @module
 */

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** The CRC-32 of bytes (a text: of its UTF-8 bytes), as an unsigned number. */
export function crc32(data: string | Uint8Array): number {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) {
    crc = TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}
