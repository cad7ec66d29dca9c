import assert from "node:assert/strict";
import {
  DynamoDBClient,
  type DynamoDBClientConfig,
  type ExportDescription,
} from "@aws-sdk/client-dynamodb";
import { ExportRequestError, requestExport, waitForExport } from "./export_request.ts";

const ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/things";

/** A fake DynamoDB client answering each command by its name. */
function fakeClient(answers: Record<string, (input: Record<string, unknown>) => unknown>) {
  const sent: [string, Record<string, unknown>][] = [];
  const client = {
    config: { region: () => Promise.resolve("us-east-1") },
    send: (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const name = command.constructor.name.replace(/Command$/, "");
      sent.push([name, command.input]);
      return Promise.resolve(answers[name](command.input));
    },
  };
  return { client: client as unknown as DynamoDBClient, sent };
}

/**
 * The SDK's own DynamoDB client, its middleware and all, over HTTP answered here: each
 * operation by its name, in the wire's JSON (times in epoch seconds), with the HTTP `Date`
 * that `date` gives (DynamoDB's clock; none for undefined). What was asked, by name.
 */
function httpClient(
  answers: Record<string, (input: Record<string, unknown>) => unknown>,
  date: () => string | undefined = () => new Date().toUTCString(),
) {
  const sent: [string, Record<string, unknown>][] = [];
  const requestHandler = {
    handle: (request: { headers: Record<string, string>; body?: unknown }) => {
      const name = request.headers["x-amz-target"].replace(/^DynamoDB_20120810\./, "");
      // The SDK's JSON body: bytes (or text).
      const body = request.body;
      const input = JSON.parse(
        typeof body === "string" ? body : new TextDecoder().decode(body as Uint8Array),
      );
      sent.push([name, input]);
      const headers: Record<string, string> = { "content-type": "application/x-amz-json-1.0" };
      const at = date();
      if (at !== undefined) headers.date = at;
      const answer = new TextEncoder().encode(JSON.stringify(answers[name](input)));
      return Promise.resolve({ response: { statusCode: 200, headers, body: answer } });
    },
  };
  const client = new DynamoDBClient({
    region: "us-east-1",
    credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
    maxAttempts: 1,
    requestHandler: requestHandler as unknown as DynamoDBClientConfig["requestHandler"],
  });
  return { client, sent };
}

/** A time as the wire gives it: epoch seconds. */
const seconds = (ms: number) => ms / 1000;

/** DynamoDB's clock an hour from this machine's: `offsetMs` from it, as an HTTP `Date`. */
const awsClock = (offsetMs: number) => () => new Date(Date.now() + offsetMs).toUTCString();

const pitr = (status: string) => () => ({
  ContinuousBackupsDescription: {
    PointInTimeRecoveryDescription: { PointInTimeRecoveryStatus: status },
  },
});

Deno.test("an export is asked for as a full DynamoDB JSON export, with the caller's ClientToken", async () => {
  const { client, sent } = httpClient({
    DescribeContinuousBackups: pitr("ENABLED"),
    DescribeTable: () => ({ Table: { TableArn: ARN } }),
    ExportTableToPointInTime: () => ({
      ExportDescription: { ExportArn: `${ARN}/export/1`, ExportStatus: "IN_PROGRESS" },
    }),
  });
  const arn = await requestExport(client, "things", { bucket: "b", prefix: "p" }, "job-7-things");
  assert.equal(arn, `${ARN}/export/1`);
  assert.deepEqual(sent.at(-1), ["ExportTableToPointInTime", {
    TableArn: ARN,
    S3Bucket: "b",
    S3Prefix: "p",
    ExportFormat: "DYNAMODB_JSON",
    ExportType: "FULL_EXPORT",
    ClientToken: "job-7-things",
  }]);
});

Deno.test("a token that answers an export in progress joins it; one that answers an ended export asks again", async () => {
  const inProgress = httpClient({
    DescribeContinuousBackups: pitr("ENABLED"),
    DescribeTable: () => ({ Table: { TableArn: ARN } }),
    ExportTableToPointInTime: () => ({
      ExportDescription: {
        ExportArn: `${ARN}/export/asked-before`,
        ExportStatus: "IN_PROGRESS",
        ExportTime: seconds(Date.now() - 10 * 60_000),
      },
    }),
  });
  assert.equal(
    await requestExport(inProgress.client, "things", { bucket: "b", prefix: "" }, "tok"),
    `${ARN}/export/asked-before`,
  );
  assert.equal(inProgress.sent.filter(([n]) => n === "ExportTableToPointInTime").length, 1);

  const tokens: unknown[] = [];
  const ended = httpClient({
    DescribeContinuousBackups: pitr("ENABLED"),
    DescribeTable: () => ({ Table: { TableArn: ARN } }),
    ExportTableToPointInTime: (input) => {
      tokens.push(input.ClientToken);
      return input.ClientToken === "tok"
        ? {
          ExportDescription: {
            ExportArn: `${ARN}/export/old`,
            ExportStatus: "COMPLETED",
            ExportTime: seconds(Date.now() - 30 * 60_000),
          },
        }
        : {
          ExportDescription: {
            ExportArn: `${ARN}/export/new`,
            ExportStatus: "IN_PROGRESS",
            ExportTime: seconds(Date.now()),
          },
        };
    },
  });
  assert.equal(
    await requestExport(ended.client, "things", { bucket: "b", prefix: "" }, "tok"),
    `${ARN}/export/new`,
    "the table as of now, not as of the old export",
  );
  assert.equal(tokens[0], "tok");
  assert.match(String(tokens[1]), /^tok-[0-9a-f]{16}$/);
  // A rerun asks the same way and derives the same token: it joins the new export.
  await requestExport(ended.client, "things", { bucket: "b", prefix: "" }, "tok");
  assert.deepEqual(tokens.slice(2), ["tok", tokens[1]]);
});

/**
 * A client whose first token answers an ended export `ageMs` older than DynamoDB's clock
 * (`offsetMs` from this machine's), and any other token a new export in progress.
 */
function endedExportClient(ageMs: number, offsetMs = 0) {
  return httpClient({
    DescribeContinuousBackups: pitr("ENABLED"),
    DescribeTable: () => ({ Table: { TableArn: ARN } }),
    ExportTableToPointInTime: (input) => ({
      ExportDescription: input.ClientToken === "tok"
        ? {
          ExportArn: `${ARN}/export/made`,
          ExportStatus: "COMPLETED",
          ExportTime: seconds(Date.now() + offsetMs - ageMs),
        }
        : { ExportArn: `${ARN}/export/new`, ExportStatus: "IN_PROGRESS" },
    }),
  }, awsClock(offsetMs));
}

const exportsAsked = (sent: [string, unknown][]) =>
  sent.filter(([name]) => name === "ExportTableToPointInTime").length;

Deno.test("an ended export is its own only within 10 s of its request's answer: 30 s old, another is asked for", async () => {
  for (const [ageMs, expected] of [[2_000, "made"], [30_000, "new"]] as const) {
    const { client } = endedExportClient(ageMs);
    assert.equal(
      await requestExport(client, "things", { bucket: "b", prefix: "" }, "tok"),
      `${ARN}/export/${expected}`,
      `${ageMs} ms old`,
    );
  }
});

Deno.test("this machine's clock an hour ahead of AWS's: the export its request made, ended, is its own", async () => {
  // Made by this request (the stand-in's end at once) 2 s before DynamoDB's answer.
  const { client, sent } = endedExportClient(2_000, -3600_000);
  assert.equal(
    await requestExport(client, "things", { bucket: "b", prefix: "" }, "tok"),
    `${ARN}/export/made`,
  );
  assert.equal(exportsAsked(sent), 1, "no other export asked for");
});

Deno.test("this machine's clock an hour behind AWS's: an earlier backfill's ended export is not its own", async () => {
  // Asked for by a backfill half an hour earlier, on DynamoDB's clock.
  const { client, sent } = endedExportClient(30 * 60_000, 3600_000);
  assert.equal(
    await requestExport(client, "things", { bucket: "b", prefix: "" }, "tok"),
    `${ARN}/export/new`,
    "the table as of now, not as of the earlier backfill's export",
  );
  assert.equal(exportsAsked(sent), 2);
});

Deno.test("an ended export answered without a Date that parses is refused, naming the table; one in progress needs none", async () => {
  for (const date of [undefined, "soon"]) {
    const { client, sent } = httpClient({
      DescribeContinuousBackups: pitr("ENABLED"),
      DescribeTable: () => ({ Table: { TableArn: ARN } }),
      ExportTableToPointInTime: () => ({
        ExportDescription: {
          ExportArn: `${ARN}/export/made`,
          ExportStatus: "COMPLETED",
          ExportTime: seconds(Date.now()),
        },
      }),
    }, () => date);
    await assert.rejects(
      requestExport(client, "things", { bucket: "b", prefix: "" }, "tok"),
      (error: Error) =>
        error instanceof ExportRequestError &&
        error.message.startsWith(
          `export of things: export ${ARN}/export/made has ended (COMPLETED), and DynamoDB's ` +
            "answer carried no Date that parses",
        ),
      `Date ${date}`,
    );
    assert.equal(exportsAsked(sent), 1, "no other export asked for");
  }
  const { client } = httpClient({
    DescribeContinuousBackups: pitr("ENABLED"),
    DescribeTable: () => ({ Table: { TableArn: ARN } }),
    ExportTableToPointInTime: () => ({
      ExportDescription: { ExportArn: `${ARN}/export/running`, ExportStatus: "IN_PROGRESS" },
    }),
  }, () => undefined);
  assert.equal(
    await requestExport(client, "things", { bucket: "b", prefix: "" }, "tok"),
    `${ARN}/export/running`,
  );
});

Deno.test("an ended export answered without an export time is refused, naming the table", async () => {
  const { client, sent } = httpClient({
    DescribeContinuousBackups: pitr("ENABLED"),
    DescribeTable: () => ({ Table: { TableArn: ARN } }),
    ExportTableToPointInTime: () => ({
      ExportDescription: { ExportArn: `${ARN}/export/made`, ExportStatus: "COMPLETED" },
    }),
  }, () => new Date().toUTCString());
  await assert.rejects(
    requestExport(client, "things", { bucket: "b", prefix: "" }, "tok"),
    (error: Error) =>
      error instanceof ExportRequestError &&
      error.message.startsWith(
        `export of things: export ${ARN}/export/made is not in progress (COMPLETED) and ` +
          "DynamoDB gave no export time",
      ),
  );
  assert.equal(exportsAsked(sent), 1, "no other export asked for");
});

Deno.test("a failed export answered without an export time is asked for again, under the next token", async () => {
  const tokens: string[] = [];
  const { client } = httpClient({
    DescribeContinuousBackups: pitr("ENABLED"),
    DescribeTable: () => ({ Table: { TableArn: ARN } }),
    ExportTableToPointInTime: (input) => {
      tokens.push(String(input.ClientToken));
      return {
        ExportDescription: tokens.length === 1
          ? { ExportArn: `${ARN}/export/failed`, ExportStatus: "FAILED" }
          : { ExportArn: `${ARN}/export/new`, ExportStatus: "IN_PROGRESS" },
      };
    },
  });
  assert.equal(
    await requestExport(client, "things", { bucket: "b", prefix: "" }, "tok"),
    `${ARN}/export/new`,
  );
  assert.equal(tokens.length, 2);
  assert.match(tokens[1], /^tok-[0-9a-f]{16}$/);
});

Deno.test("a derived token that answers an ended export too goes on down the chain", async () => {
  const tokens: string[] = [];
  const old = seconds(Date.now() - 20 * 60_000);
  const { client } = httpClient({
    DescribeContinuousBackups: pitr("ENABLED"),
    DescribeTable: () => ({ Table: { TableArn: ARN } }),
    ExportTableToPointInTime: (input) => {
      tokens.push(String(input.ClientToken));
      // The hour's first two backfills made these two, and both have ended.
      const n = tokens.length;
      return {
        ExportDescription: n < 3
          ? { ExportArn: `${ARN}/export/e${n}`, ExportStatus: "COMPLETED", ExportTime: old }
          : { ExportArn: `${ARN}/export/e${n}`, ExportStatus: "IN_PROGRESS" },
      };
    },
  });
  assert.equal(
    await requestExport(client, "things", { bucket: "b", prefix: "" }, "tok"),
    `${ARN}/export/e3`,
  );
  assert.equal(tokens[0], "tok");
  assert.equal(new Set(tokens).size, 3, "each ended export leads to a token of its own");
});

Deno.test("without point-in-time recovery the request is refused with the command that turns it on", async () => {
  const { client, sent } = fakeClient({ DescribeContinuousBackups: pitr("DISABLED") });
  await assert.rejects(
    requestExport(client, "things", { bucket: "b", prefix: "" }, "t"),
    (error: Error) =>
      error instanceof ExportRequestError &&
      error.message.startsWith("export of things: point-in-time recovery is DISABLED") &&
      error.message.includes(
        "aws dynamodb update-continuous-backups --region us-east-1 --table-name things",
      ),
  );
  assert.equal(sent.length, 1, "no export was asked for");
});

Deno.test("waiting polls until COMPLETED, reporting progress; FAILED is an error naming the reason", async () => {
  const statuses = ["IN_PROGRESS", "IN_PROGRESS", "COMPLETED"];
  const { client } = fakeClient({
    DescribeExport: () => ({ ExportDescription: { ExportStatus: statuses.shift(), ItemCount: 3 } }),
  });
  const seen: (ExportDescription | undefined)[] = [];
  const slept: number[] = [];
  const done = await waitForExport(client, "things", `${ARN}/export/1`, {
    progress: (d) => seen.push(d),
    sleep: (ms) => Promise.resolve(void slept.push(ms)),
    pollMs: 1500,
  });
  assert.equal(done.ItemCount, 3);
  assert.deepEqual([seen.length, slept], [2, [1000, 1500]], "waits double up to pollMs");

  const failing = fakeClient({
    DescribeExport: () => ({
      ExportDescription: {
        ExportStatus: "FAILED",
        FailureCode: "S3NoSuchBucket",
        FailureMessage: "The specified bucket does not exist",
      },
    }),
  });
  await assert.rejects(
    waitForExport(failing.client, "things", `${ARN}/export/2`),
    {
      name: "ExportRequestError",
      message:
        `export of things: export ${ARN}/export/2 failed: S3NoSuchBucket: The specified bucket does not exist`,
    },
  );
});

Deno.test("waiting gives up at its deadline, saying the export's state", async () => {
  let clock = 0;
  const { client } = fakeClient({
    DescribeExport: () => ({ ExportDescription: { ExportStatus: "IN_PROGRESS" } }),
  });
  await assert.rejects(
    waitForExport(client, "things", "arn", {
      now: () => clock,
      sleep: (ms) => Promise.resolve(void (clock += ms)),
      pollMs: 600_000,
      timeoutMs: 1_800_000,
    }),
    {
      name: "ExportStillRunning",
      message: "export of things: export arn is still IN_PROGRESS after 37 minutes of waiting",
    },
  );
});
