/**
 * What a DynamoDB request asks for, as IAM reads it (local-stack/aws/iam_policies.ts):
 * its action (`dynamodb:<Operation>`, DynamoDB Streams' too), the tables or streams it
 * acts on, and for an UpdateItem the condition keys the writer's policy names:
 * `dynamodb:Attributes` (every top-level attribute the request names: its key, and the
 * attributes its update and condition name) and `dynamodb:ReturnValues`
 * ("Using IAM policy conditions for fine-grained access control",
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html).
 *
 * @module
 */

import { tableNameFromArn } from "../../functions-shared/table_arn.ts";
import type { AccessRequest, Resource } from "./iam_policies.ts";
import { tablesOf } from "./operations.ts";
import type { Body } from "./stale_reads.ts";
import { parseStreamArn } from "./stream_arns.ts";

/** Expression keywords and the names of its functions, which name no attribute. */
const KEYWORDS = new Set(["set", "remove", "add", "delete", "and", "or", "not", "between", "in"]);

/**
 * The top-level attribute names `expression` accesses: the first element of each of its
 * document paths, `#placeholders` resolved through `names`. Values (`:v`), functions
 * (`attribute_exists(...)`, `size(...)`) and keywords are not attributes; a path's later
 * elements (`a.b`, `a[1]`) are within its first.
 */
export function expressionAttributes(
  expression: string,
  names: Readonly<Record<string, string>> = {},
): string[] {
  const found = new Set<string>();
  const token = /(:[A-Za-z0-9_]+)|(#[A-Za-z0-9_]+)|([A-Za-z_][A-Za-z0-9_]*)|(\[\s*\d+\s*\])|(\S)/g;
  let afterDot = false;
  for (const match of expression.matchAll(token)) {
    const [text, value, placeholder, word, index] = match;
    const end = match.index! + text.length;
    if (value || index) {
      afterDot = false;
      continue;
    }
    if (placeholder || word) {
      const isFunction = word !== undefined && /^\s*\(/.test(expression.slice(end));
      const isKeyword = word !== undefined && KEYWORDS.has(word.toLowerCase());
      if (!afterDot && !isFunction && !isKeyword) {
        found.add(placeholder ? names[placeholder] ?? placeholder : word);
      }
      afterDot = false;
      continue;
    }
    afterDot = text === ".";
  }
  return [...found];
}

/** A table named by its name or its ARN (`arn:aws:dynamodb:...:table/<name>`). */
function tableName(nameOrArn: string): string {
  return tableNameFromArn(nameOrArn) ?? nameOrArn;
}

/** The stream a Streams request acts on: its StreamArn, or the ARN its iterator begins with. */
function streamTable(operation: string, body: Body): string | undefined {
  const arn = operation === "GetRecords"
    ? String(body.ShardIterator ?? "").split("|")[0]
    : String(body.StreamArn ?? "");
  return parseStreamArn(arn)?.table;
}

/** The top-level attributes an UpdateItem names, per its table. */
function updateAttributes(body: Body): string[] {
  const names = (body.ExpressionAttributeNames ?? {}) as Record<string, string>;
  return [
    ...new Set([
      ...Object.keys((body.Key ?? {}) as Body),
      ...Object.keys((body.AttributeUpdates ?? {}) as Body),
      ...Object.keys((body.Expected ?? {}) as Body),
      ...expressionAttributes(String(body.UpdateExpression ?? ""), names),
      ...expressionAttributes(String(body.ConditionExpression ?? ""), names),
    ]),
  ];
}

/**
 * What the request `target` (its `X-Amz-Target`) with the parsed `body`, signed for
 * `region`, asks of IAM.
 */
export function accessRequest(target: string, body: Body, region: string): AccessRequest {
  const operation = target.slice(target.indexOf(".") + 1);
  const action = `dynamodb:${operation}`;
  if (target.startsWith("DynamoDBStreams_")) {
    const table = streamTable(operation, body);
    const resources: Resource[] = table ? [{ kind: "stream", table, region }] : [];
    return { action, resources };
  }
  // An export's request names its table by ARN, and its following names the export.
  if (operation === "DescribeExport") {
    const of = typeof body.ExportArn === "string"
      ? /:table\/([^/]+)\/export\/([^/]+)$/.exec(body.ExportArn)
      : null;
    const resources: Resource[] = of
      ? [{ kind: "export", table: of[1], exportId: of[2], region }]
      : [];
    return { action, resources };
  }
  const tables =
    (operation === "ExportTableToPointInTime" && typeof body.TableArn === "string"
      ? [body.TableArn]
      : tablesOf(operation, body)).map(tableName);
  const index = typeof body.IndexName === "string" ? body.IndexName : undefined;
  const resources = tables.map((table): Resource =>
    index === undefined ? { kind: "table", table, region } : { kind: "index", table, index, region }
  );
  if (operation !== "UpdateItem" || tables.length !== 1) return { action, resources };
  return {
    action,
    resources,
    attributes: { [tables[0]]: updateAttributes(body) },
    ...(typeof body.ReturnValues === "string" ? { returnValues: body.ReturnValues } : {}),
  };
}
