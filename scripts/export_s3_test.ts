import assert from "node:assert/strict";
import { authenticatedS3 } from "../local-stack/aws/s3_auth.ts";
import { withCheckedServer } from "../local-stack/aws/signature_v4_fixtures.ts";
import type { S3Client } from "@aws-sdk/client-s3";
import { exportPages, ExportReadError } from "../functions-shared/export_items.ts";
import { exportFileOpener, exportS3Client, manifestText } from "./export_s3.ts";

const KEY = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

Deno.test("a bucket outside the region the reads are signed for names its region and the setting", async () => {
  await withCheckedServer(
    (upstream) =>
      authenticatedS3(upstream, {
        secrets: { [KEY.accessKeyId]: KEY.secretAccessKey },
        region: "eu-west-1",
      }),
    () => new Response("hello"),
    async (endpoint, served) => {
      const env = (region?: string) => (name: string) =>
        ({
          S3_ENDPOINT: endpoint,
          S3_ACCESS_KEY_ID: KEY.accessKeyId,
          S3_SECRET_ACCESS_KEY: KEY.secretAccessKey,
          EXPORT_BUCKET_REGION: region,
        } as Record<string, string | undefined>)[name];
      // Signed for us-east-1 (the setting unset): S3's 400, which the SDK does not follow.
      await assert.rejects(
        manifestText(exportS3Client(env()), "exports", "p/manifest-summary.json", () => {}),
        (error: Error) => {
          assert.match(
            error.message,
            /^s3:\/\/exports\/p\/manifest-summary\.json: .*the region 'us-east-1' is wrong.*; the bucket is in eu-west-1: set EXPORT_BUCKET_REGION=eu-west-1$/,
          );
          return true;
        },
      );
      assert.equal(served(), 0);
      // With the setting, the reads go through.
      const warnings: string[] = [];
      const text = await manifestText(
        exportS3Client(env("eu-west-1")),
        "exports",
        "p/manifest-summary.json",
        (line) => warnings.push(line),
      );
      assert.equal(text, "hello");
      assert.equal(served(), 2, "the manifest and its checksum");
    },
  );
});

Deno.test("an object whose bytes end before its length is a broken read, read again, not a file cut short", async () => {
  const line = JSON.stringify({ Item: { id: { S: "x".repeat(200) } } });
  const whole = new Uint8Array(
    await new Response(
      new Blob([`${line}\n`.repeat(50)]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer(),
  );
  // The connection closed cleanly halfway.
  const half = whole.slice(0, Math.floor(whole.length / 2));
  const s3 = {
    send: () =>
      Promise.resolve({
        ContentLength: whole.length,
        Body: { transformToWebStream: () => new Blob([half]).stream() },
      }),
  } as unknown as S3Client;
  const body = await exportFileOpener(s3, "exports")("p/AWSDynamoDB/x/data/f.json.gz");
  const file = { key: "p/AWSDynamoDB/x/data/f.json.gz", itemCount: 50, md5Checksum: "", etag: "" };
  await assert.rejects(
    (async () => {
      for await (const _ of exportPages(body, file, 10)) { /* read on */ }
    })(),
    (error: Error) => {
      assert.ok(error instanceof ExportReadError, String(error));
      assert.match(
        error.message,
        new RegExp(`the object's bytes ended after ${half.length} of its ${whole.length} bytes`),
      );
      return true;
    },
  );
});

Deno.test("a manifest whose bytes end before its length is a broken read (tried again), not a manifest refused", async () => {
  const s3 = {
    send: () =>
      Promise.resolve({
        ContentLength: 100,
        Body: { transformToString: () => Promise.resolve('{"version": "2020-06-30"') },
      }),
  } as unknown as S3Client;
  await assert.rejects(
    manifestText(s3, "exports", "p/manifest-summary.json", () => {}),
    (error: Error) => {
      assert.ok(error instanceof ExportReadError, String(error));
      assert.match(
        error.message,
        /s3:\/\/exports\/p\/manifest-summary\.json.*the object's bytes ended after 24 of its 100 bytes/,
      );
      return true;
    },
  );
});
