import assert from "node:assert/strict";
import {
  credentialsRefused,
  EndCheckpointTimedOut,
  transientLoadFailure,
} from "./export_failures.ts";
import { ExportDataError, ExportReadError } from "./export_items.ts";

const s3 = (name: string, status: number) =>
  Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
const pg = (code: string, message = code) => Object.assign(new Error(message), { code });

Deno.test("what may pass as it is: the database unavailable or busy, S3 throttling or failing, the network, a read broken mid-file", () => {
  for (
    const error of [
      pg("ECONNREFUSED"),
      pg("57P01"),
      pg("40P01"),
      pg("53300"),
      s3("SlowDown", 503),
      s3("InternalError", 500),
      s3("RequestTimeout", 400),
      Object.assign(new Error("socket hang up"), { name: "TimeoutError" }),
      pg("ENOTFOUND", "getaddrinfo ENOTFOUND bucket.s3.amazonaws.com"),
      pg("EAI_AGAIN"),
      pg("EHOSTUNREACH"),
      new ExportReadError("k", "unreadable after line 40000: connection reset", "ECONNRESET"),
      // The checkpoint ending a file, alone in its chunk: no work that comes back the same.
      new EndCheckpointTimedOut(pg("57014", "canceling statement due to statement timeout")),
    ]
  ) {
    assert.ok(transientLoadFailure(error), `${error.name} ${(error as { code?: string }).code}`);
  }
});

Deno.test("a chunk of no lines that timed out says whether it was the file's end or a chunk before its first line", () => {
  const cause = pg("57014", "canceling statement due to statement timeout");
  assert.equal(
    new EndCheckpointTimedOut(cause).message,
    "the checkpoint that ends the file timed out: canceling statement due to statement timeout",
  );
  const early = new EndCheckpointTimedOut(cause, false);
  assert.equal(
    early.message,
    "a chunk timed out before its first line was staged: canceling statement due to statement timeout",
  );
  assert.ok(transientLoadFailure(early));
});

Deno.test("what does not: a statement timeout, S3's refusals, data that is not the export's, bytes that arrived whole and are not gzip", () => {
  for (
    const error of [
      pg("57014", "canceling statement due to statement timeout"),
      pg("22P02"),
      s3("NoSuchKey", 404),
      s3("AccessDenied", 403),
      s3("PreconditionFailed", 412),
      new Error("export data file k: holds 3 items, but the files manifest says 4"),
      new ExportDataError("k", "unreadable after line 0: not gzip (after 1024 bytes of it)"),
    ]
  ) {
    assert.ok(!transientLoadFailure(error), error.message);
  }
});

Deno.test("credentials S3 refused stop the loader rather than fail the job", () => {
  assert.ok(credentialsRefused(s3("AccessDenied", 403)));
  assert.ok(credentialsRefused(s3("ExpiredToken", 400)));
  assert.ok(credentialsRefused(s3("InvalidAccessKeyId", 403)));
  assert.ok(!credentialsRefused(s3("NoSuchKey", 404)));
  // A request signed for another region than the bucket's: EXPORT_BUCKET_REGION to fix,
  // the export kept (not forgotten, its job not cancelled).
  assert.ok(credentialsRefused(s3("AuthorizationHeaderMalformed", 400)));
  assert.ok(credentialsRefused(s3("PermanentRedirect", 301)));
  assert.ok(!credentialsRefused(pg("28P01")), "the database's own refusal is not S3's");
});
