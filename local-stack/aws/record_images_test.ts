import assert from "node:assert/strict";
import { imageDigest } from "./record_images.ts";

Deno.test("images compare whatever the order of attributes and set members", () => {
  assert.equal(
    imageDigest({ b: { SS: ["y", "x"] }, a: { N: "1" } }),
    imageDigest({ a: { N: "1" }, b: { SS: ["x", "y"] } }),
  );
  assert.notEqual(
    imageDigest({ a: { L: [{ S: "y" }, { S: "x" }] } }),
    imageDigest({
      a: { L: [{ S: "x" }, { S: "y" }] },
    }),
  );
  assert.equal(imageDigest(null), imageDigest(undefined));
});
