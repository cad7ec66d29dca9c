import assert from "node:assert/strict";
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { authenticatedS3, type S3AuthConfig, s3AuthRefusal } from "./s3_auth.ts";
import {
  EXPORT_WRITE_ACTIONS,
  exporterS3Policy,
  putObjectDenied,
  s3Accesses,
  stackS3Policies,
} from "./s3_iam.ts";
import { S3_MAX_SKEW_MS, sha256Hex } from "./signature_v4.ts";
import { signedHeaders, withCheckedServer } from "./signature_v4_fixtures.ts";

const KEY = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

/** The checks in front of an upstream that answers "hello" to all it is handed. */
function withStandIn(
  config: Partial<S3AuthConfig>,
  test: (endpoint: string, served: () => number) => Promise<void>,
) {
  return withCheckedServer(
    (upstream) =>
      authenticatedS3(upstream, {
        secrets: { [KEY.accessKeyId]: KEY.secretAccessKey },
        region: "us-east-1",
        ...config,
      }),
    () => new Response("hello", { headers: { etag: '"5d41402abc4b2a76b9719d911017c592"' } }),
    test,
  );
}

function client(
  endpoint: string,
  options: Partial<ConstructorParameters<typeof S3Client>[0]> = {},
) {
  return new S3Client({
    region: "us-east-1",
    endpoint,
    forcePathStyle: true,
    credentials: KEY,
    maxAttempts: 1,
    ...options,
  });
}

const get = new GetObjectCommand({
  Bucket: "dynamodb-exports",
  Key: "p/AWSDynamoDB/x/manifest-summary.json",
});

Deno.test("the SDK's signed requests are served: a read, and a write with its body's hash", async () => {
  await withStandIn({}, async (endpoint, served) => {
    const s3 = client(endpoint);
    const got = await s3.send(get);
    assert.equal(await got.Body!.transformToString(), "hello");
    await s3.send(
      new PutObjectCommand({ Bucket: "dynamodb-exports", Key: "a b/ü$.json", Body: "{}" }),
    );
    assert.equal(served(), 2);
  });
});

Deno.test("a wrong secret, an unknown key or no signature at all is refused before anything is served", async () => {
  await withStandIn({}, async (endpoint, served) => {
    await assert.rejects(
      client(endpoint, { credentials: { ...KEY, secretAccessKey: "wrong" } }).send(get),
      (e: Error & { $metadata: { httpStatusCode: number } }) =>
        e.name === "SignatureDoesNotMatch" && e.$metadata.httpStatusCode === 403,
    );
    await assert.rejects(
      client(endpoint, { credentials: { ...KEY, accessKeyId: "AKIAUNKNOWN" } }).send(get),
      (e: Error & { $metadata: { httpStatusCode: number } }) =>
        e.name === "InvalidAccessKeyId" && e.$metadata.httpStatusCode === 403,
    );
    const anonymous = await fetch(`${endpoint}/dynamodb-exports/p/manifest-summary.json`);
    assert.equal(anonymous.status, 403);
    assert.match(await anonymous.text(), /<Code>AccessDenied<\/Code>/);
    const v2 = await fetch(`${endpoint}/dynamodb-exports/k`, {
      headers: { authorization: "AWS S3RVER:frJIUN8DYpKDtOLCwo//yllqDzg=" },
    });
    assert.equal(v2.status, 400);
    assert.match(await v2.text(), /<Code>InvalidRequest<\/Code>.*AWS4-HMAC-SHA256/);
    assert.equal(served(), 0);
  });
});

Deno.test("a request signed for another region is refused as S3 refuses it; only HeadBucket's redirect is followed", async () => {
  await withStandIn({}, async (endpoint, served) => {
    // An object's request signed for the wrong region: S3's 400, which the SDK does not
    // follow, asked to or not.
    for (const followRegionRedirects of [false, true]) {
      await assert.rejects(
        client(endpoint, { region: "us-west-2", followRegionRedirects }).send(get),
        (e: Error & { $metadata: { httpStatusCode: number } }) =>
          e.name === "AuthorizationHeaderMalformed" && e.$metadata.httpStatusCode === 400 &&
          /the region 'us-west-2' is wrong; expecting 'us-east-1'/.test(e.message),
      );
    }
    assert.equal(served(), 0);
    // HeadBucket is redirected to the bucket's region, and says it.
    const head = new HeadBucketCommand({ Bucket: "dynamodb-exports" });
    await assert.rejects(
      client(endpoint, { region: "us-west-2" }).send(head),
      (e: Error & { $metadata: { httpStatusCode: number } }) => e.$metadata.httpStatusCode === 301,
    );
    const found = await client(endpoint, { region: "us-west-2", followRegionRedirects: true })
      .send(head);
    assert.equal(found.$metadata.httpStatusCode, 200);
  });
});

Deno.test("a clock more than 15 minutes off is refused with the stand-in's time, from which the SDK corrects itself", async () => {
  await withStandIn(
    { now: () => Date.now() + S3_MAX_SKEW_MS + 60_000 },
    async (endpoint, served) => {
      await assert.rejects(
        client(endpoint).send(get),
        (e: Error & { $metadata: { httpStatusCode: number } }) =>
          e.name === "RequestTimeTooSkewed" && e.$metadata.httpStatusCode === 403,
      );
      assert.equal(served(), 0);
      const retrying = client(endpoint, { maxAttempts: 2 });
      assert.equal(await (await retrying.send(get)).Body!.transformToString(), "hello");
    },
  );
});

Deno.test("a body that is not the one its signed hash declares is refused", async () => {
  await withStandIn({}, async (endpoint, served) => {
    const url = `${endpoint}/dynamodb-exports/k`;
    const headers = signedHeaders("PUT", url, sha256Hex("the body signed"), {
      service: "s3",
      key: KEY,
    });
    const send = (body: string) => fetch(url, { method: "PUT", headers, body });
    const tampered = await send("another body");
    assert.equal(tampered.status, 400);
    assert.match(await tampered.text(), /<Code>XAmzContentSHA256Mismatch<\/Code>/);
    assert.equal(served(), 0);
    const intact = await send("the body signed");
    await intact.body?.cancel();
    assert.equal(intact.status, 200);
    assert.equal(served(), 1);
  });
});

Deno.test("a key with . and .. segments is checked over the path the SDK signed; a query that does not decode is refused", async () => {
  await withStandIn({}, async (endpoint, served) => {
    const s3 = client(endpoint);
    const odd = new GetObjectCommand({ Bucket: "dynamodb-exports", Key: "p/./a/../b c+d.json" });
    assert.equal(await (await s3.send(odd)).Body!.transformToString(), "hello");
    assert.equal(served(), 1);
    // Signed for a query that decodes (the signer cannot sign one that does not), sent
    // with one that does not: refused before its signature is looked at.
    const good = `${endpoint}/dynamodb-exports/k?prefix=x`;
    const headers = signedHeaders("GET", good, sha256Hex(""), { service: "s3", key: KEY });
    const refused = await fetch(`${endpoint}/dynamodb-exports/k?prefix=%E0%A4%A`, { headers });
    assert.equal(refused.status, 400);
    assert.match(await refused.text(), /<Code>InvalidURI<\/Code>/);
    assert.equal(served(), 1);
  });
});

Deno.test("a scope of another service or day, host left unsigned, a clock ahead, a payload hash S3 does not know or an unsigned x-amz- header is refused", async () => {
  // A GET of one object, signed now: sent with `headers`, its status and S3's error code.
  const getter = (endpoint: string) => {
    const url = `${endpoint}/dynamodb-exports/k`;
    const sent = async (headers: Record<string, string>) => {
      const answer = await fetch(url, { headers });
      return [answer.status, /<Code>(\w+)<\/Code>/.exec(await answer.text())?.[1]];
    };
    const sign = (service = "s3") =>
      signedHeaders("GET", url, sha256Hex(""), { service, key: KEY });
    return { sent, sign };
  };
  const now = Date.now();
  await withStandIn({ now: () => now - S3_MAX_SKEW_MS - 60_000 }, async (endpoint) => {
    const { sent, sign } = getter(endpoint);
    // The client's clock 16 minutes ahead of the stand-in's.
    assert.deepEqual(await sent(sign()), [403, "RequestTimeTooSkewed"]);
  });
  await withStandIn({}, async (endpoint, served) => {
    const { sent, sign } = getter(endpoint);
    const signed = sign();
    const other = sign("dynamodb");
    other["x-amz-content-sha256"] = sha256Hex("");
    assert.deepEqual(await sent(other), [400, "AuthorizationHeaderMalformed"]);
    const noHost = signed.authorization.replace("SignedHeaders=host;", "SignedHeaders=");
    assert.deepEqual(await sent({ ...signed, authorization: noHost }), [
      400,
      "AuthorizationHeaderMalformed",
    ]);
    const otherDay = signed.authorization.replace(
      /Credential=(\w+)\/\d{8}\//,
      "Credential=$1/20200101/",
    );
    assert.deepEqual(await sent({ ...signed, authorization: otherDay }), [
      400,
      "AuthorizationHeaderMalformed",
    ]);
    assert.deepEqual(
      await sent({ ...signed, "x-amz-content-sha256": sha256Hex("").toUpperCase() }),
      [400, "InvalidArgument"],
    );
    assert.deepEqual(
      await sent({ ...signed, "x-amz-meta-owner": "someone" }),
      [403, "AccessDenied"],
    );
    assert.equal(served(), 0);
  });
});

/** The status and S3 error code of a GET of one object signed now, sent with `change` made. */
async function refusalOf(
  change: (headers: Record<string, string>) => void,
  clocks: { at?: number; now?: number } = {},
) {
  const url = "http://127.0.0.1:9000/dynamodb-exports/k";
  const headers = signedHeaders("GET", url, sha256Hex(""), {
    service: "s3",
    key: KEY,
    at: clocks.at,
  });
  change(headers);
  const answer = s3AuthRefusal(new Request(url, { headers }), null, {
    secrets: { [KEY.accessKeyId]: KEY.secretAccessKey },
    region: "us-east-1",
    now: clocks.now === undefined ? undefined : () => clocks.now!,
  });
  return answer && [answer.status, /<Code>(\w+)<\/Code>/.exec(await answer.text())?.[1]];
}

Deno.test("a SigV4 request without x-amz-content-sha256 is refused, as S3 requires it", async () => {
  assert.equal(await refusalOf(() => {}), null);
  assert.deepEqual(
    await refusalOf((headers) => delete headers["x-amz-content-sha256"]),
    [400, "InvalidRequest"],
  );
});

Deno.test("any unsigned x-amz- header is refused, not only metadata", async () => {
  for (const name of ["x-amz-server-side-encryption", "x-amz-acl", "x-amz-request-payer"]) {
    assert.deepEqual(
      await refusalOf((headers) => headers[name] = "x"),
      [403, "AccessDenied"],
      name,
    );
  }
});

Deno.test("a clock 15 minutes off is served; a millisecond more is RequestTimeTooSkewed", async () => {
  const at = Date.UTC(2026, 0, 15, 12);
  assert.equal(await refusalOf(() => {}, { at, now: at + 900_000 }), null);
  assert.equal(await refusalOf(() => {}, { at, now: at - 900_000 }), null);
  assert.deepEqual(await refusalOf(() => {}, { at, now: at + 900_001 }), [
    403,
    "RequestTimeTooSkewed",
  ]);
  assert.deepEqual(await refusalOf(() => {}, { at, now: at - 900_001 }), [
    403,
    "RequestTimeTooSkewed",
  ]);
});

Deno.test("a key with a policy may do what it grants and nothing else, handed on as the stand-in's own", async () => {
  const EXPORTER = { accessKeyId: "localexporter", secretAccessKey: "exporter-secret" };
  const seen: { key: string | undefined; body: string }[] = [];
  await withCheckedServer(
    (upstream) =>
      authenticatedS3(async (req) => {
        seen.push({
          key: /Credential=([^/]+)\//.exec(req.headers.get("authorization") ?? "")?.[1],
          body: req.method === "PUT" ? await req.clone().text() : "",
        });
        return upstream(req);
      }, {
        secrets: {
          [KEY.accessKeyId]: KEY.secretAccessKey,
          [EXPORTER.accessKeyId]: EXPORTER.secretAccessKey,
        },
        policies: { [EXPORTER.accessKeyId]: exporterS3Policy("exports") },
        ownKeyId: KEY.accessKeyId,
        region: "us-east-1",
      }),
    () => new Response("hello", { headers: { etag: '"5d41402abc4b2a76b9719d911017c592"' } }),
    async (endpoint, served) => {
      const s3 = client(endpoint, { credentials: EXPORTER });
      const read = await s3.send(new GetObjectCommand({ Bucket: "exports", Key: "p/a.json" }));
      assert.equal(await read.Body!.transformToString(), "hello");
      await s3.send(new PutObjectCommand({ Bucket: "exports", Key: "p/b.json", Body: "the body" }));
      await s3.send(new HeadBucketCommand({ Bucket: "exports" }));
      assert.equal(served(), 3);
      assert.deepEqual(seen, [
        { key: "S3RVER", body: "" },
        { key: "S3RVER", body: "the body" },
        { key: "S3RVER", body: "" },
      ], "handed on as s3rver's own key, the body whole");
      await assert.rejects(
        s3.send(new DeleteObjectCommand({ Bucket: "exports", Key: "p/a.json" })),
        (error: Error) => {
          assert.equal(error.name, "AccessDenied");
          assert.equal(
            error.message,
            'User: arn:aws:iam::000000000000:user/supabase-exporter is not authorized to perform: s3:DeleteObject on resource: "arn:aws:s3:::exports/p/a.json" because no identity-based policy allows the s3:DeleteObject action',
          );
          return true;
        },
      );
      await assert.rejects(
        s3.send(new GetObjectCommand({ Bucket: "other", Key: "p/a.json" })),
        /s3:GetObject on resource: "arn:aws:s3:::other\/p\/a.json"/,
      );
      // A key that s3rver would read as a path out of the bucket.
      await assert.rejects(
        s3.send(new GetObjectCommand({ Bucket: "exports", Key: "../other/secret.txt" })),
        (error: Error) =>
          error.name === "InvalidRequest" && /\. or \.\. segments/.test(error.message),
      );
      // A copy reads its source: the exporter may not read another bucket's object so.
      await assert.rejects(
        s3.send(
          new CopyObjectCommand({
            Bucket: "exports",
            Key: "stolen",
            CopySource: "other/secret.txt",
          }),
        ),
        /s3:GetObject on resource: "arn:aws:s3:::other\/secret.txt"/,
      );
      assert.equal(served(), 3, "nothing refused was served");
    },
  );
});

Deno.test("each request is the action S3 authorizes it as, its subresource's when it names one", () => {
  const action = (method: string, path: string, query = "", copy?: string) => {
    const accesses = s3Accesses(method, path, query, copy);
    return typeof accesses === "string" ? accesses : accesses.map((a) => a.action).join(" + ");
  };
  for (
    const [method, path, query, expected] of [
      ["GET", "/b/k", "", "s3:GetObject"],
      ["HEAD", "/b/k", "", "s3:GetObject"],
      ["GET", "/b/k", "versionId=3", "s3:GetObjectVersion"],
      ["GET", "/b/k", "acl", "s3:GetObjectAcl"],
      ["PUT", "/b/k", "acl", "s3:PutObjectAcl"],
      ["GET", "/b/k", "tagging", "s3:GetObjectTagging"],
      ["PUT", "/b/k", "tagging", "s3:PutObjectTagging"],
      ["GET", "/b/k", "attributes", "s3:GetObjectAttributes"],
      ["PUT", "/b/k", "", "s3:PutObject"],
      ["POST", "/b/k", "uploads", "s3:PutObject"],
      ["PUT", "/b/k", "partNumber=1&uploadId=u", "s3:PutObject"],
      ["POST", "/b/k", "uploadId=u", "s3:PutObject"],
      ["GET", "/b/k", "uploadId=u", "s3:ListMultipartUploadParts"],
      ["DELETE", "/b/k", "uploadId=u", "s3:AbortMultipartUpload"],
      ["DELETE", "/b/k", "", "s3:DeleteObject"],
      ["DELETE", "/b/k", "versionId=3", "s3:DeleteObjectVersion"],
      ["POST", "/b/k", "restore", "s3:RestoreObject"],
      ["GET", "/b", "list-type=2&prefix=p", "s3:ListBucket"],
      ["HEAD", "/b", "", "s3:ListBucket"],
      ["GET", "/b", "location", "s3:GetBucketLocation"],
      ["GET", "/b", "uploads", "s3:ListBucketMultipartUploads"],
      ["GET", "/b", "versions", "s3:ListBucketVersions"],
      ["POST", "/b", "delete", "s3:DeleteObject"],
      ["PUT", "/b", "", "s3:CreateBucket"],
      ["DELETE", "/b", "", "s3:DeleteBucket"],
      ["GET", "/", "", "s3:ListAllMyBuckets"],
    ] as const
  ) {
    assert.equal(action(method, path, query), expected, `${method} ${path}?${query}`);
  }
  assert.equal(action("PUT", "/b/k", "", "/src/o%20k"), "s3:PutObject + s3:GetObject");
  assert.equal(
    action("PUT", "/b/k", "", "src/o?versionId=2"),
    "s3:PutObject + s3:GetObjectVersion",
  );
  assert.match(action("GET", "/b/a/%2E%2E/x"), /\. or \.\. segments/);
});

Deno.test("an export's requester must be allowed to put, put the ACL of and abort uploads of its objects", () => {
  const policy = (actions: string[]) => ({
    k: { user: "u", objects: [{ actions, bucket: "b" }], buckets: [] },
  });
  assert.equal(putObjectDenied(policy([...EXPORT_WRITE_ACTIONS]), "k", "b", "p/x"), null);
  assert.match(
    putObjectDenied(policy(["s3:PutObject", "s3:GetObject"]), "k", "b", "p/x")!,
    /not authorized to perform: s3:PutObjectAcl on resource: "arn:aws:s3:::b\/p\/x"/,
  );
  assert.equal(putObjectDenied(policy([]), "the stand-in's own", "b", "p/x"), null);
  // The exporter's own policy (Terraform's, exports.tf) allows all three.
  const stack = stackS3Policies("exporter", "dynamodb-exports");
  assert.equal(putObjectDenied(stack, "exporter", "dynamodb-exports", "k"), null);
});
