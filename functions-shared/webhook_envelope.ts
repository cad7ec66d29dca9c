/**
 * The webhook's request bodies (docs/interfaces.md, "mmp-toledo-sync"), as zod schemas:
 * - from the Lambda: `{"records": [DynamoDB Streams records as Lambda receives them]}`;
 * - direct, for people: `{"table", "action": "UPSERT" | "DELETE", "data": {...}}`.
 * A body that fits neither is refused (400) with the path of the first problem.
 *
 * @module
 */

import { z } from "zod";
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { ValueError } from "./dynamo_decoder.ts";
import { isDynamoNumber, parseJsonExact } from "./dynamo_numbers.ts";

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const EXPECTED_VALUE = 'expected a DynamoDB attribute value such as {"S": ...} or {"N": "..."}';

/**
 * The first problem in an attribute value in DynamoDB JSON, with its path, or undefined.
 * Hand-written rather than a zod union: it runs for every attribute of every record.
 */
export function attributeValueProblem(
  value: unknown,
  path: (string | number)[] = [],
): { path: (string | number)[]; message: string } | undefined {
  const bad = (message = EXPECTED_VALUE) => ({ path, message });
  if (
    typeof value !== "object" || value === null || Array.isArray(value) || isDynamoNumber(value)
  ) return bad();
  const keys = Object.keys(value);
  if (keys.length !== 1) return bad();
  const [type] = keys;
  const v = (value as Record<string, unknown>)[type];
  const strings = (list: unknown, check: (s: string) => boolean) =>
    Array.isArray(list) && list.length > 0 &&
    list.every((s) => typeof s === "string" && check(s));
  switch (type) {
    case "S":
      return typeof v === "string" ? undefined : bad("S must be a string");
    // A number's text is checked by the mapping (dynamo_decoder.ts), so that a record with
    // a bad number is dead-lettered alone rather than refusing the whole batch.
    case "N":
      return typeof v === "string" ? undefined : bad("N must be a number's text");
    case "B":
      return typeof v === "string" && BASE64.test(v) ? undefined : bad("B must be base64 text");
    case "SS":
      return strings(v, () => true) ? undefined : bad("SS must be a non-empty list of strings");
    case "NS":
      return strings(v, () => true)
        ? undefined
        : bad("NS must be a non-empty list of numbers' text");
    case "BS":
      return strings(v, (s) => BASE64.test(s))
        ? undefined
        : bad("BS must be a non-empty list of base64 text");
    case "BOOL":
      return typeof v === "boolean" ? undefined : bad("BOOL must be true or false");
    case "NULL":
      return v === true ? undefined : bad("NULL must be true");
    case "L":
      if (!Array.isArray(v)) return bad("L must be a list");
      for (let i = 0; i < v.length; i++) {
        const problem = attributeValueProblem(v[i], [...path, "L", i]);
        if (problem) return problem;
      }
      return undefined;
    case "M":
      if (typeof v !== "object" || v === null || Array.isArray(v)) return bad("M must be a map");
      return attributeMapProblem(v, [...path, "M"]);
    default:
      return bad();
  }
}

/** The first problem in a map of attribute values, or undefined. */
export function attributeMapProblem(map: object, path: (string | number)[] = []) {
  for (const [name, value] of Object.entries(map)) {
    const problem = attributeValueProblem(value, [...path, name]);
    if (problem) return problem;
  }
  return undefined;
}

const AttributeMapSchema = z.record(z.string(), z.unknown()).check((ctx) => {
  const problem = attributeMapProblem(ctx.value);
  if (problem) {
    ctx.issues.push({
      code: "custom",
      message: problem.message,
      path: problem.path,
      input: ctx.value,
    });
  }
});

/** A DynamoDB Streams record as Lambda hands it over. */
export const StreamRecordSchema = z.looseObject({
  eventID: z.string().min(1),
  eventName: z.enum(["INSERT", "MODIFY", "REMOVE"]),
  eventSourceARN: z.string().min(1),
  dynamodb: z.looseObject({
    Keys: AttributeMapSchema,
    NewImage: AttributeMapSchema.optional(),
    OldImage: AttributeMapSchema.optional(),
    SequenceNumber: z.string().regex(/^\d{1,40}$/, "expected up to 40 digits"),
    // A number, exact (a DynamoNumber) when the body was parsed exactly: read as a plain
    // number either way.
    ApproximateCreationDateTime: z.preprocess(
      (v) => (isDynamoNumber(v) ? Number(v.value) : v),
      z.number().positive(),
    ),
  }),
});

/** A stream record, once its shape is known to be right. */
export type StreamRecord = z.infer<typeof StreamRecordSchema> & {
  dynamodb: {
    Keys: Record<string, AttributeValue>;
    NewImage?: Record<string, AttributeValue>;
    OldImage?: Record<string, AttributeValue>;
  };
};

const LambdaBodySchema = z.strictObject({ records: z.array(StreamRecordSchema) });

const DirectBodySchema = z.strictObject({
  table: z.string().min(1),
  action: z.enum(["UPSERT", "DELETE"]),
  data: z.record(z.string(), z.unknown()),
});

/** The body of a webhook request, once parsed. */
export type WebhookBody =
  | { kind: "records"; records: StreamRecord[] }
  | { kind: "direct"; table: string; action: "UPSERT" | "DELETE"; data: Record<string, unknown> };

/** Parses a JSON body into one of the two forms, or says what is wrong and where. */
export function parseWebhookBody(
  json: unknown,
): { ok: true; body: WebhookBody } | { ok: false; problem: string } {
  const isDirect = typeof json === "object" && json !== null && !Array.isArray(json) &&
    !("records" in json);
  const result = isDirect ? DirectBodySchema.safeParse(json) : LambdaBodySchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue.path.length > 0 ? issue.path.join(".") : "(the body)";
    return { ok: false, problem: `${path}: ${issue.message}` };
  }
  return isDirect
    ? { ok: true, body: { kind: "direct", ...(result.data as z.infer<typeof DirectBodySchema>) } }
    : {
      ok: true,
      body: { kind: "records", records: (result.data as { records: StreamRecord[] }).records },
    };
}

/** Whether an attribute value, or any value inside it, is a binary (B or BS). */
function holdsBinary(v: Record<string, unknown>): boolean {
  if (v.B !== undefined || v.BS !== undefined) return true;
  if (v.M && typeof v.M === "object") {
    for (const inner of Object.values(v.M as Record<string, unknown>)) {
      if (inner && typeof inner === "object" && holdsBinary(inner as Record<string, unknown>)) {
        return true;
      }
    }
  }
  if (Array.isArray(v.L)) {
    for (const inner of v.L) {
      if (inner && typeof inner === "object" && holdsBinary(inner as Record<string, unknown>)) {
        return true;
      }
    }
  }
  return false;
}

/**
 * Turns the base64 text of B and BS values into bytes, as the SDK's codec expects.
 * Throws {@link ValueError} naming the attribute when the text is not base64. A map
 * without binaries (most items) is returned as it is, without a copy.
 */
export function attributeMapFromJson(
  map: Record<string, unknown>,
  path = "",
): Record<string, AttributeValue> {
  if (!holdsBinary({ M: map })) return map as Record<string, AttributeValue>;
  const decode = (text: string, at: string) => {
    if (!BASE64.test(text)) throw new ValueError(at, "binary (B) is not base64 text");
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  };
  const value = (v: Record<string, unknown>, at: string): AttributeValue => {
    if (typeof v.B === "string") return { B: decode(v.B, at) };
    if (Array.isArray(v.BS)) return { BS: (v.BS as string[]).map((b) => decode(b, at)) };
    if (v.M) return { M: attributeMapFromJson(v.M as Record<string, unknown>, at) };
    if (Array.isArray(v.L)) {
      return { L: (v.L as Record<string, unknown>[]).map((x, i) => value(x, `${at}[${i}]`)) };
    }
    return v as unknown as AttributeValue;
  };
  return Object.fromEntries(
    Object.entries(map).map((
      [k, v],
    ) => [k, value(v as Record<string, unknown>, path ? `${path}.${k}` : k)]),
  );
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
