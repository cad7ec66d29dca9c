import assert from "node:assert/strict";
import type { AttributeMap } from "../../functions-shared/dynamo_decoder.ts";
import { byTargetTable, TABLES } from "../../functions-shared/table_registry.ts";
import { itemKeyOf, planWriteBack } from "../../functions-shared/write_back_update.ts";
import { accessDenied, exporterIdentity, readerIdentity, writerIdentity } from "./iam_policies.ts";
import { accessRequest } from "./iam_request.ts";

const reader = readerIdentity(TABLES);
const writer = writerIdentity(TABLES);
const segments = byTargetTable("firespring_segments")!;
const leads = byTargetTable("mmp_toledo_leads")!;
const streamOf = (table: string) =>
  `arn:aws:dynamodb:ddblocal:000000000000:table/${table}/stream/2026-12-01T00:00:00.000`;
const ask = (operation: string, body: Record<string, unknown>, region = "us-east-1") =>
  accessRequest(
    `${
      operation === "GetRecords" || operation === "DescribeStream" || operation === "ListStreams"
        ? "DynamoDBStreams_20120810"
        : "DynamoDB_20120810"
    }.${operation}`,
    body,
    region,
  );

Deno.test("the reader reads the synced tables and their streams, and nothing else", () => {
  for (const operation of ["Scan", "GetItem", "Query", "DescribeTable"]) {
    assert.equal(accessDenied(reader, ask(operation, { TableName: segments.sourceTable })), null);
  }
  assert.equal(
    accessDenied(
      reader,
      ask("GetRecords", { ShardIterator: `${streamOf(segments.sourceTable)}|001|x` }),
    ),
    null,
  );
  assert.equal(
    accessDenied(reader, ask("PutItem", { TableName: segments.sourceTable })),
    "User: arn:aws:iam::000000000000:user/supabase-reader is not authorized to perform: " +
      `dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:000000000000:table/${segments.sourceTable} ` +
      "because no identity-based policy allows the dynamodb:PutItem action",
  );
  assert.match(
    accessDenied(reader, ask("Scan", { TableName: "someone-elses" }))!,
    /table\/someone-elses because/,
  );
  assert.match(
    accessDenied(reader, ask("DescribeStream", { StreamArn: streamOf("someone-elses") }))!,
    /dynamodb:DescribeStream on resource: .*table\/someone-elses\/stream\/\* because/,
  );
  assert.match(
    accessDenied(reader, ask("ListStreams", {}))!,
    /dynamodb:ListStreams on resource: \* because/,
  );
  assert.match(
    accessDenied(reader, ask("UpdateItem", { TableName: segments.sourceTable }))!,
    /UpdateItem/,
  );
  // A policy's ARNs carry the table's region: the same name in another region is not it.
  assert.match(
    accessDenied(reader, ask("Scan", { TableName: leads.sourceTable }, "us-east-1"))!,
    new RegExp(`arn:aws:dynamodb:us-east-1:000000000000:table/${leads.sourceTable} because`),
  );
  assert.equal(
    accessDenied(reader, ask("Scan", { TableName: leads.sourceTable }, leads.region)),
    null,
  );
  // An index is a resource of its own (table/<t>/index/<i>), which the reader is not granted.
  assert.match(
    accessDenied(reader, ask("Query", { TableName: segments.sourceTable, IndexName: "byName" }))!,
    new RegExp(`table/${segments.sourceTable}/index/byName because`),
  );
});

Deno.test("the writer updates only its tables' mapped attributes, asking back nothing but the old values", () => {
  const update = (body: Record<string, unknown>) =>
    accessDenied(
      writer,
      ask("UpdateItem", {
        TableName: segments.sourceTable,
        Key: { segment_id: { S: "s" } },
        ...body,
      }),
    );
  assert.equal(
    update({ UpdateExpression: "SET #n = :n", ExpressionAttributeNames: { "#n": "name" } }),
    null,
  );
  assert.equal(
    update({
      UpdateExpression: "SET #n = :n",
      ExpressionAttributeNames: { "#n": "name" },
      ReturnValues: "UPDATED_OLD",
    }),
    null,
  );
  assert.match(
    update({
      UpdateExpression: "SET #n = :n",
      ExpressionAttributeNames: { "#n": "name" },
      ReturnValues: "ALL_NEW",
    })!,
    /user\/supabase-writer is not authorized to perform: dynamodb:UpdateItem/,
  );
  assert.match(
    update({ UpdateExpression: "SET secret_flag = :n" })!,
    /UpdateItem/,
    "an attribute outside the list",
  );
  assert.match(
    update({
      UpdateExpression: "SET #n = :n",
      ConditionExpression: "attribute_not_exists(hidden)",
      ExpressionAttributeNames: { "#n": "name" },
    })!,
    /UpdateItem/,
    "a condition's attribute is accessed too",
  );
  assert.match(
    accessDenied(
      writer,
      ask("UpdateItem", {
        TableName: segments.sourceTable,
        Key: { id: { S: "x" } },
        UpdateExpression: "SET company = :c",
      }),
    )!,
    /UpdateItem/,
    "another table's attributes",
  );
  for (const operation of ["PutItem", "DeleteItem", "GetItem", "Scan", "BatchWriteItem"]) {
    assert.match(
      accessDenied(writer, ask(operation, { TableName: segments.sourceTable }))!,
      new RegExp(operation),
    );
  }
});

Deno.test("the write-back's own updates pass the writer's policy", () => {
  const lead: AttributeMap = {
    id: { S: "l-1" },
    name: { S: "Old" },
    email: { S: "old@example.com" },
    __typename: { S: "Lead" },
    _version: { N: "3" },
    _lastChangedAt: { N: "1795860000000" },
    updatedAt: { S: "2026-11-01T00:00:00.000Z" },
  };
  const leadEdit = {
    id: 1,
    rowKey: { lead_id: "l-1" },
    columns: ["name", "email"],
    before: { name: "Old", email: "old@example.com" },
    after: { name: "New", email: null },
    rangeKey: null,
  };
  const segment: AttributeMap = {
    segment_id: { S: "s-1" },
    name: { S: "Old name" },
    raw: { M: { tags: { SS: ["a", "b"] } } },
  };
  const segmentEdit = {
    id: 2,
    rowKey: { segment_id: "s-1" },
    columns: ["segment_name", "segment_criteria"],
    before: { segment_name: "Old name", segment_criteria: { raw: { tags: ["a", "b"] } } },
    after: { segment_name: "New name", segment_criteria: { raw: { tags: ["a"] } } },
    rangeKey: null,
  };
  for (
    const [spec, edit, item] of [[leads, leadEdit, lead], [segments, segmentEdit, segment]] as const
  ) {
    const key = itemKeyOf(spec, edit) as AttributeMap;
    const plan = planWriteBack(spec, edit, key, item);
    assert.equal(plan.kind, "update", JSON.stringify(plan));
    if (plan.kind !== "update") continue;
    assert.equal(
      accessDenied(
        writer,
        ask("UpdateItem", plan.input as unknown as Record<string, unknown>, spec.region),
      ),
      null,
      `${spec.sourceTable}: ${plan.input.UpdateExpression} / ${plan.input.ConditionExpression}`,
    );
  }
});

Deno.test("the exporter checks and exports the synced tables and follows their exports, and nothing else", () => {
  const exporter = exporterIdentity(TABLES);
  const table = `arn:aws:dynamodb:us-east-1:000000000000:table/${segments.sourceTable}`;
  for (const operation of ["DescribeTable", "DescribeContinuousBackups"]) {
    assert.equal(accessDenied(exporter, ask(operation, { TableName: segments.sourceTable })), null);
  }
  assert.equal(
    accessDenied(exporter, ask("ExportTableToPointInTime", { TableArn: table, S3Bucket: "b" })),
    null,
  );
  assert.equal(
    accessDenied(exporter, ask("DescribeExport", { ExportArn: `${table}/export/0123-abc` })),
    null,
  );
  // Another table's export, an export of a table not synced, and reading any table.
  assert.equal(
    accessDenied(exporter, ask("ExportTableToPointInTime", { TableArn: `${table}-other` })),
    "User: arn:aws:iam::000000000000:user/supabase-exporter is not authorized to perform: " +
      `dynamodb:ExportTableToPointInTime on resource: ${table}-other because no ` +
      "identity-based policy allows the dynamodb:ExportTableToPointInTime action",
  );
  assert.match(
    accessDenied(exporter, ask("DescribeExport", { ExportArn: `${table}-other/export/1` }))!,
    new RegExp(`on resource: ${table}-other/export/1 because`),
  );
  for (const operation of ["Scan", "GetItem", "Query", "UpdateItem", "PutItem"]) {
    assert.match(
      accessDenied(exporter, ask(operation, { TableName: segments.sourceTable }))!,
      new RegExp(`not authorized to perform: dynamodb:${operation} `),
    );
  }
  assert.match(
    accessDenied(exporter, ask("ListExports", {}))!,
    /dynamodb:ListExports on resource: \* because/,
  );
});
