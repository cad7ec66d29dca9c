import assert from "node:assert/strict";
import {
  canonicalRequest,
  checkSignature,
  DYNAMODB_MAX_SKEW_MS,
  parseAuthorization,
  pathAndQuery,
  S3_MAX_SKEW_MS,
  sha256Hex,
} from "./signature_v4.ts";
import { signedHeaders } from "./signature_v4_fixtures.ts";

// AWS's own worked examples, with their published signatures ("Examples: Signature
// Calculations", https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html),
// signed by the tests' own signer (signature_v4_fixtures.ts), which the other tests trust.
const KEY = {
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};
const EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** The signature of an example request to `path` (with its query) of the example bucket. */
function signed(
  method: string,
  path: string,
  query: string,
  headers: Record<string, string>,
  payloadHash: string,
): string {
  const url = `https://examplebucket.s3.amazonaws.com${path}${query ? `?${query}` : ""}`;
  const sent = signedHeaders(method, url, payloadHash, {
    service: "s3",
    key: KEY,
    extra: headers,
    at: Date.UTC(2013, 4, 24),
  });
  return parseAuthorization(sent.authorization)!.signature;
}

Deno.test("GET Object, with a Range header: AWS's published signature", () => {
  assert.equal(
    signed("GET", "/test.txt", "", { range: "bytes=0-9" }, EMPTY),
    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
  );
});

Deno.test("PUT Object, a signed body and an encoded key: AWS's published signature", () => {
  const body = "Welcome to Amazon S3.";
  assert.equal(
    sha256Hex(body),
    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
  );
  assert.equal(
    signed("PUT", "/test%24file.text", "", {
      date: "Fri, 24 May 2013 00:00:00 GMT",
      "x-amz-storage-class": "REDUCED_REDUNDANCY",
    }, sha256Hex(body)),
    "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
  );
});

Deno.test("GET Bucket (list objects), a query sorted by name: AWS's published signature", () => {
  assert.equal(
    signed("GET", "/", "prefix=J&max-keys=2", {}, EMPTY),
    "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
  );
});

Deno.test("an Authorization header is taken apart, or refused when it does not parse", () => {
  assert.deepEqual(
    parseAuthorization(
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, " +
        "SignedHeaders=host;range;x-amz-date, Signature=" + "a".repeat(64),
    ),
    {
      accessKeyId: "AKIAIOSFODNN7EXAMPLE",
      day: "20130524",
      region: "us-east-1",
      service: "s3",
      signedHeaders: ["host", "range", "x-amz-date"],
      signature: "a".repeat(64),
    },
  );
  assert.equal(parseAuthorization("AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg="), null);
  assert.equal(
    parseAuthorization("AWS4-HMAC-SHA256 Credential=K/20130524/us-east-1/s3/aws4_request"),
    null,
  );
});

Deno.test("the path and query are taken as sent, . and .. segments kept", () => {
  assert.deepEqual(pathAndQuery("http://127.0.0.1:4568/b/p/./a/../k?list-type=2&prefix=x%2F"), {
    path: "/b/p/./a/../k",
    query: "list-type=2&prefix=x%2F",
  });
  assert.deepEqual(pathAndQuery("http://h"), { path: "/", query: "" });
});

Deno.test("a header's value is canonical with runs of spaces and tabs made one, and nothing else changed", () => {
  const canonical = canonicalRequest({
    method: "GET",
    path: "/",
    query: "",
    header: (name) => ({ a: "  x \t  y  ", b: "p\u00a0q" } as Record<string, string>)[name] ?? null,
    signedHeaders: ["a", "b"],
    payloadHash: "UNSIGNED-PAYLOAD",
  });
  assert.equal(canonical, "GET\n/\n\na:x y\nb:p\u00a0q\n\na;b\nUNSIGNED-PAYLOAD");
});

/** What checkSignature finds of a DynamoDB request signed at `at`, checked at `now`. */
function problemOf(at: number, now: number, maxSkewMs: number, drop?: string): string {
  const headers = signedHeaders("POST", "http://127.0.0.1:8000/", EMPTY, {
    service: "dynamodb",
    key: KEY,
    at,
  });
  if (drop) delete headers[drop];
  const checked = checkSignature(
    new Request("http://127.0.0.1:8000/", { method: "POST", headers }),
    EMPTY,
    {
      secrets: { [KEY.accessKeyId]: KEY.secretAccessKey },
      service: "dynamodb",
      now,
      maxSkewMs,
    },
  );
  return "problem" in checked ? checked.problem.kind : "ok";
}

Deno.test("DynamoDB allows a clock 5 minutes off either way, not a millisecond more", () => {
  const at = Date.UTC(2026, 0, 15, 12);
  assert.equal(DYNAMODB_MAX_SKEW_MS, 300_000);
  assert.equal(problemOf(at, at + 300_000, DYNAMODB_MAX_SKEW_MS), "ok");
  assert.equal(problemOf(at, at - 300_000, DYNAMODB_MAX_SKEW_MS), "ok");
  assert.equal(problemOf(at, at + 300_001, DYNAMODB_MAX_SKEW_MS), "skewed");
  assert.equal(problemOf(at, at - 300_001, DYNAMODB_MAX_SKEW_MS), "skewed");
});

Deno.test("S3 allows a clock 15 minutes off either way, not a millisecond more", () => {
  const at = Date.UTC(2026, 0, 15, 12);
  assert.equal(S3_MAX_SKEW_MS, 900_000);
  assert.equal(problemOf(at, at + 900_000, S3_MAX_SKEW_MS), "ok");
  assert.equal(problemOf(at, at + 900_001, S3_MAX_SKEW_MS), "skewed");
  assert.equal(problemOf(at, at - 900_001, S3_MAX_SKEW_MS), "skewed");
});

Deno.test("a request without X-Amz-Date is refused as having no date", () => {
  const at = Date.UTC(2026, 0, 15, 12);
  assert.equal(problemOf(at, at, DYNAMODB_MAX_SKEW_MS, "x-amz-date"), "no date");
});
