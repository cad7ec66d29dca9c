import assert from "node:assert/strict";
import { authenticatedS3 } from "../local-stack/aws/s3_auth.ts";
import { withCheckedServer } from "../local-stack/aws/signature_v4_fixtures.ts";
import { faultyS3 } from "../local-stack/aws/s3_faults.ts";
import { s3Client } from "../local-stack/aws/s3_client.ts";
import { withS3Server } from "../local-stack/aws/s3_server.ts";
import { s3Storage } from "../local-stack/aws/s3_storage.ts";
import { EXPORT_BUCKET_REGION } from "../local-stack/config.ts";
import type { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import { exportPages, ExportReadError } from "../functions-shared/export_items.ts";
import type { ExportDataFile } from "../functions-shared/export_manifest.ts";
import { RESUMES_IN_A_ROW } from "./s3_resumed_body.ts";
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

/** A data file of 50 items, gzipped, and its key. */
async function dataFile() {
  const line = JSON.stringify({ Item: { id: { S: "x".repeat(200) } } });
  const whole = new Uint8Array(
    await new Response(
      new Blob([`${line}\n`.repeat(50)]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer(),
  );
  const file = {
    key: "p/AWSDynamoDB/x/data/f.json.gz",
    itemCount: 50,
    md5Checksum: createHash("md5").update(whole).digest("base64"),
    etag: "",
  };
  return { whole, file };
}

/**
 * S3 holding `whole`, whose answers end cleanly (a connection closed mid-object) after
 * `first` bytes for the whole object and after `ranged` for a read from a byte on.
 */
function closingS3(whole: Uint8Array, first: number, ranged: number) {
  const ranges: string[] = [];
  const s3 = {
    send: (command: GetObjectCommand) => {
      const range = command.input.Range;
      if (range) ranges.push(range);
      const from = range ? Number(/^bytes=(\d+)-$/.exec(range)![1]) : 0;
      const sent = whole.slice(from, from + (range ? ranged : first));
      return Promise.resolve({
        ContentLength: whole.length - from,
        ContentRange: range ? `bytes ${from}-${whole.length - 1}/${whole.length}` : undefined,
        ETag: '"e1"',
        Body: { transformToWebStream: () => new Blob([sent]).stream() },
      });
    },
  } as unknown as S3Client;
  return { s3, ranges };
}

const allPages = async (body: ReadableStream<Uint8Array>, file: ExportDataFile) => {
  let items = 0;
  for await (const page of exportPages(body, file, 10)) items += page.items.length;
  return items;
};

Deno.test("an object whose bytes end before its length is read on from the byte they ended at", async () => {
  const { whole, file } = await dataFile();
  const half = Math.floor(whole.length / 2);
  const { s3, ranges } = closingS3(whole, half, whole.length);
  const open = exportFileOpener(s3, "exports", { sleep: () => Promise.resolve() });
  assert.equal(
    await allPages(await open(file.key), file),
    50,
    "every item, the MD5 the manifest's",
  );
  assert.deepEqual(ranges, [`bytes=${half}-`]);
});

Deno.test("an object whose reads keep ending before its length is a broken read, read again, not a file cut short", async () => {
  const { whole, file } = await dataFile();
  const half = Math.floor(whole.length / 2);
  // Each read from a byte on answers none.
  const { s3, ranges } = closingS3(whole, half, 0);
  const open = exportFileOpener(s3, "exports", { sleep: () => Promise.resolve() });
  await assert.rejects(
    allPages(await open(file.key), file),
    (error: Error) => {
      assert.ok(error instanceof ExportReadError, String(error));
      assert.match(
        error.message,
        new RegExp(`the object's bytes ended after ${half} of its ${whole.length} bytes`),
      );
      return true;
    },
  );
  assert.equal(ranges.length, RESUMES_IN_A_ROW);
});

Deno.test("through the S3 stand-in, a data file whose read is cut halfway is read on with a signed ranged GET", async () => {
  const { whole, file } = await dataFile();
  await withS3Server(["exports"], async (server) => {
    let reads = 0;
    const front = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      authenticatedS3(
        // The first read of the file is cut halfway, as a broken connection cuts it; the
        // rest are whole.
        faultyS3(server.endpoint, { errorRate: 0, cutRate: 0.5 }, () => reads++ === 0 ? 0 : 1),
        { secrets: { [KEY.accessKeyId]: KEY.secretAccessKey }, region: EXPORT_BUCKET_REGION },
      ),
    );
    const own = s3Client(server.endpoint);
    const s3 = s3Client(`http://127.0.0.1:${front.addr.port}`);
    try {
      await s3Storage(own).put("exports", file.key, whole);
      const lines: string[] = [];
      const open = exportFileOpener(s3, "exports", {
        sleep: () => Promise.resolve(),
        log: (line) => lines.push(line),
      });
      assert.equal(
        await allPages(await open(file.key), file),
        50,
        "every item, the MD5 the manifest's",
      );
      assert.equal(reads, 2, "the cut read and the read on from its byte");
      assert.match(
        lines.join("\n"),
        new RegExp(
          `^s3://exports/${file.key}: [^;]+; reading on from byte ${
            Math.floor(whole.length / 2)
          } of ${whole.length} \\(resume 1 of 3\\)$`,
        ),
      );
    } finally {
      own.destroy();
      s3.destroy();
      await front.shutdown();
    }
  });
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
