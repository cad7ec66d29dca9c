import assert from "node:assert/strict";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { s3Client } from "./s3_client.ts";
import { withS3Server } from "./s3_server.ts";
import { s3Storage } from "./s3_storage.ts";

Deno.test("the S3 stand-in keeps what is put in a bucket, and knows which buckets exist", async () => {
  await withS3Server(["exports"], async (server) => {
    const client = s3Client(server.endpoint);
    try {
      const storage = s3Storage(client);
      assert.equal(await storage.bucketExists("exports"), true);
      assert.equal(await storage.bucketExists("missing"), false);
      await storage.put("exports", "p/AWSDynamoDB/x/_started", new TextEncoder().encode("hi"));
      const got = await client.send(
        new GetObjectCommand({ Bucket: "exports", Key: "p/AWSDynamoDB/x/_started" }),
      );
      assert.equal(await got.Body!.transformToString(), "hi");
      await assert.rejects(
        storage.put("missing", "k", new Uint8Array()),
        (error: Error) => error.name === "NoSuchBucket",
      );
    } finally {
      client.destroy();
    }
  });
});

Deno.test("a bucket that S3 refuses to describe (403, 500) is not taken to exist", async () => {
  for (const status of [403, 500]) {
    const refusing = {
      send: () =>
        Promise.reject(
          Object.assign(new Error("refused"), { $metadata: { httpStatusCode: status } }),
        ),
    } as unknown as S3Client;
    await assert.rejects(s3Storage(refusing).bucketExists("exports"), /refused/, String(status));
  }
});
