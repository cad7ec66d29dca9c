import assert from "node:assert/strict";
import {
  askedOf,
  exportRequestProblem,
  exportTimeProblem,
  sameToken,
  TOKEN_WINDOW_MS,
} from "./export_requests.ts";

const NOW = 1_800_000_000_000;

Deno.test("only full exports in DynamoDB JSON, to a bucket named as the API allows", () => {
  assert.equal(exportRequestProblem({ S3Bucket: "exports" }), undefined);
  assert.match(exportRequestProblem({ S3Bucket: "exports", ExportFormat: "ION" })!, /only full/);
  assert.match(
    exportRequestProblem({ S3Bucket: "exports", ExportType: "INCREMENTAL_EXPORT" })!,
    /only full/,
  );
  assert.equal(
    exportRequestProblem({ S3Bucket: "-bad-" }),
    'S3Bucket "-bad-" is not a bucket name',
  );
  assert.match(exportRequestProblem({ S3Bucket: "b".repeat(256) })!, /is not a bucket name/);
  assert.equal(exportRequestProblem({ S3Bucket: "b".repeat(255) }), undefined);
});

Deno.test("an ExportTime before PITR, in the future or in the past is refused; none is the present", () => {
  const since = NOW - 3600_000;
  assert.equal(exportTimeProblem({}, since, NOW), undefined);
  assert.equal(exportTimeProblem({ ExportTime: NOW / 1000 }, since, NOW), undefined);
  assert.match(
    exportTimeProblem({ ExportTime: (since - 1000) / 1000 }, since, NOW)!,
    /PITR window/,
  );
  assert.match(exportTimeProblem({ ExportTime: (NOW + 1000) / 1000 }, since, NOW)!, /PITR window/);
  assert.match(
    exportTimeProblem({ ExportTime: (NOW - 5000) / 1000 }, since, NOW)!,
    /only the present/,
  );
});

Deno.test("a ClientToken finds its export for 8 hours after it completed; other parameters conflict", () => {
  const body = { TableArn: "t", S3Bucket: "exports", ClientToken: "tok" };
  const state = {
    description: { ClientToken: "tok" },
    outcome: { EndTime: NOW / 1000 },
    asked: askedOf(body),
  };
  assert.deepEqual(sameToken([state], body, NOW + 1000), { same: state });
  assert.deepEqual(sameToken([state], { ...body, S3Prefix: "p" }, NOW), {
    conflict: "ClientToken tok was used within the last 8 hours with another S3Prefix",
  });
  assert.equal(sameToken([state], body, NOW + TOKEN_WINDOW_MS), undefined, "expired");
  assert.equal(sameToken([state], { ...body, ClientToken: "other" }, NOW), undefined);
  assert.equal(sameToken([state], { TableArn: "t", S3Bucket: "exports" }, NOW), undefined);
  const running = { ...state, outcome: undefined };
  assert.deepEqual(sameToken([running], body, NOW + 2 * TOKEN_WINDOW_MS), { same: running });
});
