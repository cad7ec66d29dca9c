import assert from "node:assert/strict";
import { attributeMapFromJson } from "./attribute_binaries.ts";
import { ValueError } from "./dynamo_decoder.ts";

Deno.test("attributeMapFromJson turns base64 into bytes at every depth and leaves the rest", () => {
  const map = attributeMapFromJson({
    id: { S: "a" },
    n: { N: "12345678901234567890123456789012345678" },
    blob: { B: "AAEC" },
    blobs: { BS: ["AA==", "/w=="] },
    meta: { M: { inner: { B: "Aw==" }, list: { L: [{ S: "x" }, { B: "BA==" }] } } },
  });
  assert.deepEqual(map.id, { S: "a" });
  assert.deepEqual(map.n, { N: "12345678901234567890123456789012345678" });
  assert.deepEqual(map.blob, { B: new Uint8Array([0, 1, 2]) });
  assert.deepEqual(map.blobs, { BS: [new Uint8Array([0]), new Uint8Array([255])] });
  assert.deepEqual(map.meta, {
    M: {
      inner: { B: new Uint8Array([3]) },
      list: { L: [{ S: "x" }, { B: new Uint8Array([4]) }] },
    },
  });
});

Deno.test("attributeMapFromJson returns a map without binaries as it is, and finds a deep one", () => {
  const plain = { id: { S: "a" }, meta: { M: { list: { L: [{ N: "1" }, { M: {} }] } } } };
  assert.equal(attributeMapFromJson(plain), plain, "no copy");
  const deep = { meta: { M: { list: { L: [{ N: "1" }, { M: { b: { B: "BQ==" } } }] } } } };
  assert.notEqual(attributeMapFromJson(deep), deep);
  assert.deepEqual(
    (attributeMapFromJson(deep).meta as { M: { list: { L: unknown[] } } }).M.list.L[1],
    { M: { b: { B: new Uint8Array([5]) } } },
  );
});

Deno.test("attributeMapFromJson names the attribute whose binary is not base64", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ blob: { B: "%%" } }, "blob"],
    [{ meta: { M: { inner: { B: "%%" } } } }, "meta.inner"],
    [{ list: { L: [{ S: "x" }, { B: "%%" }] } }, "list[1]"],
    [{ set: { BS: ["AA==", "%%"] } }, "set"],
  ];
  for (const [map, path] of cases) {
    assert.throws(
      () => attributeMapFromJson(map),
      (error: Error) => {
        assert.ok(error instanceof ValueError);
        assert.equal(error.path, path);
        assert.equal(error.message, `attribute ${path}: binary (B) is not base64 text`);
        return true;
      },
    );
  }
});
