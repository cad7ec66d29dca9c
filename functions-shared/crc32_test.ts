import assert from "node:assert/strict";
import { crc32 } from "./crc32.ts";

Deno.test("CRC-32 (IEEE) of the standard check string and of the empty body", () => {
  assert.equal(crc32("123456789"), 0xcbf43926);
  assert.equal(crc32(""), 0);
  assert.equal(crc32("{}"), 2745614147); // what DynamoDB Local sent for an empty answer
});

Deno.test("the CRC of bytes is the CRC of the text they encode", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  assert.equal(
    crc32(new Uint8Array([0xff, 0x00, 0x80])),
    crc32(new Uint8Array([0xff, 0x00, 0x80])),
  );
});
