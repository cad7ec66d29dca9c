/**
 * The webhook's request bodies (docs/interfaces.md, "mmp-toledo-sync"):
 * - from the Lambda: `{"records": [DynamoDB Streams records as Lambda receives them]}`;
 * - direct, for people: `{"table", "action": "UPSERT" | "DELETE", "data": {...}}`.
 * A body that fits neither is refused (400) with the path of the first problem.
 *
 * The Lambda's form is checked by hand, in one pass over each record
 * ({@link streamRecordProblem}): at a batch of 1,000 records, zod's object schemas were
 * a third of the handler's CPU (README, "Where the time goes": the webhook). The direct
 * form, a person's, is checked by json_shape.ts.
 *
 * @module
 */

import type { AttributeValue } from "./dynamo_commands.ts";
import { stringProblem } from "./dynamo_decoder.ts";
import { isDynamoNumber, parseJsonExact } from "./dynamo_numbers.ts";
import { attributeMapProblem } from "./webhook_attributes.ts";
import {
  anyObject,
  described,
  isObject,
  nonEmptyText,
  oneOf,
  problemText,
  type ShapeProblem,
  strictObject,
} from "./json_shape.ts";

export { attributeMapProblem, attributeValueProblem } from "./webhook_attributes.ts";

/** A DynamoDB Streams record as Lambda hands it over, once its shape is known to be right. */
export interface StreamRecord {
  eventID: string;
  eventName: "INSERT" | "MODIFY" | "REMOVE";
  eventSourceARN: string;
  dynamodb: {
    Keys: Record<string, AttributeValue>;
    NewImage?: Record<string, AttributeValue>;
    OldImage?: Record<string, AttributeValue>;
    /** Up to 40 digits, as text (exact). */
    SequenceNumber: string;
    /** Seconds since the epoch. */
    ApproximateCreationDateTime: number;
    [other: string]: unknown;
  };
  [other: string]: unknown;
}

/** Where a problem is, and what it is. */
export type Problem = ShapeProblem;

const EVENT_NAMES = new Set(["INSERT", "MODIFY", "REMOVE"]);
const IMAGES = ["Keys", "NewImage", "OldImage"] as const;
const SEQUENCE_NUMBER = /^\d{1,40}$/;

const INFINITE = "expected a number within a double's range, not one past 1.8e308";

/**
 * The path within `value` of its first number that is not finite (JSON's `1e400`), if
 * any. Fields that hold neither a number nor an object are passed over, and a path is
 * built only for a find: the check runs for every record of every batch.
 */
function infiniteIn(value: unknown): string[] | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? undefined : [];
  if (value === null || typeof value !== "object" || isDynamoNumber(value)) return undefined;
  const members = value as Record<string, unknown>;
  for (const key in members) {
    const member = members[key];
    if (typeof member !== "number" && (member === null || typeof member !== "object")) continue;
    const at = infiniteIn(member);
    if (at) return [key, ...at];
  }
  return undefined;
}

/** The path of the first non-finite number among `value`'s fields but those of `skip`. */
function infiniteBeside(value: Record<string, unknown>, skip: readonly string[]) {
  for (const field in value) {
    if (skip.includes(field)) continue;
    const at = infiniteIn(value[field]);
    if (at) return [field, ...at];
  }
  return undefined;
}

/**
 * The first problem of a stream record (its fields in the order Lambda writes them), or
 * the record, its ApproximateCreationDateTime read as a plain number when the body was
 * parsed exactly. Fields other than those checked are kept as they are.
 */
export function streamRecordProblem(
  value: unknown,
  path: (string | number)[] = [],
): { problem: Problem } | { record: StreamRecord } {
  const at = (field: string | number, message: string, inner = false) => ({
    problem: { path: inner ? [...path, "dynamodb", field] : [...path, field], message },
  });
  if (!isObject(value)) {
    return { problem: { path, message: `expected an object, not ${described(value)}` } };
  }
  const { eventID, eventName, eventSourceARN, dynamodb } = value;
  if (typeof eventID !== "string" || eventID === "") {
    return at("eventID", `expected a non-empty string, not ${described(eventID)}`);
  }
  // Both are stored as they are (the dead letter, the noted stream records): a text
  // Postgres cannot hold would fail the batch's transaction, a 500 for ever. AWS sends
  // neither.
  const idProblem = stringProblem(eventID);
  if (idProblem) return at("eventID", idProblem);
  if (typeof eventName !== "string" || !EVENT_NAMES.has(eventName)) {
    return at("eventName", `expected INSERT, MODIFY or REMOVE, not ${JSON.stringify(eventName)}`);
  }
  if (typeof eventSourceARN !== "string" || eventSourceARN === "") {
    return at("eventSourceARN", `expected a non-empty string, not ${described(eventSourceARN)}`);
  }
  const arnProblem = stringProblem(eventSourceARN);
  if (arnProblem) return at("eventSourceARN", arnProblem);
  if (!isObject(dynamodb)) return at("dynamodb", `expected an object, not ${described(dynamodb)}`);
  for (const image of IMAGES) {
    const map = dynamodb[image];
    if (map === undefined && image !== "Keys") continue;
    if (!isObject(map)) {
      return at(image, `expected a map of attribute values, not ${described(map)}`, true);
    }
    // The path is built only for a problem (the check runs for every record).
    const problem = attributeMapProblem(map);
    if (problem) {
      return { problem: { ...problem, path: [...path, "dynamodb", image, ...problem.path] } };
    }
  }
  const seq = dynamodb.SequenceNumber;
  if (typeof seq !== "string") {
    return at("SequenceNumber", `expected up to 40 digits as text, not ${described(seq)}`, true);
  }
  if (!SEQUENCE_NUMBER.test(seq)) return at("SequenceNumber", "expected up to 40 digits", true);
  const created = dynamodb.ApproximateCreationDateTime;
  const seconds = isDynamoNumber(created) ? Number(created.value) : created;
  if (typeof seconds !== "number" || !(seconds > 0) || !Number.isFinite(seconds)) {
    return at(
      "ApproximateCreationDateTime",
      `expected a positive number, not ${described(created)}`,
      true,
    );
  }
  // A number past a double's range (`1e400`) reads as Infinity, which nothing can store
  // (the dead letter keeps the record whole): refused here, named, as AWS sends none.
  const outside = infiniteBeside(value, ["dynamodb"]);
  const inside = outside ? undefined : infiniteBeside(dynamodb, IMAGES);
  const infinite = outside ?? (inside && ["dynamodb", ...inside]);
  if (infinite) return { problem: { path: [...path, ...infinite], message: INFINITE } };
  const record = (seconds === created ? value : {
    ...value,
    dynamodb: { ...dynamodb, ApproximateCreationDateTime: seconds },
  }) as StreamRecord;
  return { record };
}

const directBodyProblem = strictObject({
  table: { check: nonEmptyText },
  action: { check: oneOf(["UPSERT", "DELETE"]) },
  data: { check: anyObject },
});

/** The body of a webhook request, once parsed. */
export type WebhookBody =
  | { kind: "records"; records: StreamRecord[] }
  | { kind: "direct"; table: string; action: "UPSERT" | "DELETE"; data: Record<string, unknown> };

type Parsed = { ok: true; body: WebhookBody } | { ok: false; problem: string };

function refused(problem: Problem): Parsed {
  return { ok: false, problem: problemText(problem) };
}

/** The Lambda's form, `{"records": [...]}` and nothing else, checked in one pass. */
function parseLambdaBody(json: unknown): Parsed {
  if (!isObject(json)) {
    return refused({ path: [], message: `expected an object, not ${described(json)}` });
  }
  const list = json.records;
  if (!Array.isArray(list)) {
    return refused({ path: ["records"], message: `expected a list, not ${described(list)}` });
  }
  const records: StreamRecord[] = new Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const checked = streamRecordProblem(list[i], ["records", i]);
    if ("problem" in checked) return refused(checked.problem);
    records[i] = checked.record;
  }
  const extra = Object.keys(json).filter((key) => key !== "records");
  if (extra.length > 0) {
    return refused({
      path: [],
      message: `unrecognized key${extra.length > 1 ? "s" : ""}: ${
        extra.map((key) => JSON.stringify(key)).join(", ")
      }`,
    });
  }
  return { ok: true, body: { kind: "records", records } };
}

/** Parses a JSON body into one of the two forms, or says what is wrong and where. */
export function parseWebhookBody(json: unknown): Parsed {
  const isDirect = typeof json === "object" && json !== null && !Array.isArray(json) &&
    !("records" in json);
  if (!isDirect) return parseLambdaBody(json);
  const problem = directBodyProblem(json, []);
  if (problem) return refused(problem);
  const { table, action, data } = json as Record<string, unknown>;
  return {
    ok: true,
    body: {
      kind: "direct",
      table: table as string,
      action: action as "UPSERT" | "DELETE",
      data: data as Record<string, unknown>,
    },
  };
}

/**
 * Parses a webhook body's JSON (throws a SyntaxError when it is not JSON), every number
 * exact where it matters.
 *
 * A body from the Lambda (`{"records": [...]}`) carries its item's numbers as text (`{"N":
 * "1.50"}`, DynamoDB JSON); its only JSON numbers are ApproximateCreationDateTime and
 * SizeBytes, read as plain numbers anyway, and a number anywhere else is refused by
 * {@link parseWebhookBody}. So such a body is parsed by the runtime's own `JSON.parse`,
 * which at a batch of 1,000 records is several times cheaper than
 * {@link parseJsonExact}'s reviver, called for every value. Any other body (a person's
 * direct request, whose data holds plain JSON numbers) is parsed again, exactly.
 */
export function parseWebhookJson(text: string): unknown {
  const plain: unknown = JSON.parse(text);
  const fromLambda = typeof plain === "object" && plain !== null && !Array.isArray(plain) &&
    Array.isArray((plain as { records?: unknown }).records);
  return fromLambda ? plain : parseJsonExact(text);
}
