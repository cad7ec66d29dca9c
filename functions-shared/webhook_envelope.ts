/**
 * The webhook's request bodies (interfaces.md, "mmp-toledo-sync"), as zod schemas:
 * - from the Lambda: `{"records": [DynamoDB Streams records as Lambda receives them]}`;
 * - direct, for people: `{"table", "action": "UPSERT" | "DELETE", "data": {...}}`.
 * A body that fits neither is refused (400) with the path of the first problem.
 *
 * @module
 */

import { z } from "zod";
import type { AttributeValue } from "@aws-sdk/client-dynamodb";

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, "expected base64");

/** One attribute value in DynamoDB JSON. */
export const AttributeValueSchema: z.ZodType<unknown> = z.lazy(() =>
  z.union([
    z.strictObject({ S: z.string() }),
    z.strictObject({ N: z.string().min(1) }),
    z.strictObject({ B: base64 }),
    z.strictObject({ SS: z.array(z.string()).min(1) }),
    z.strictObject({ NS: z.array(z.string().min(1)).min(1) }),
    z.strictObject({ BS: z.array(base64).min(1) }),
    z.strictObject({ M: z.record(z.string(), AttributeValueSchema) }),
    z.strictObject({ L: z.array(AttributeValueSchema) }),
    z.strictObject({ BOOL: z.boolean() }),
    z.strictObject({ NULL: z.literal(true) }),
  ], { error: 'expected a DynamoDB attribute value such as {"S": ...} or {"N": "..."}' })
);

const AttributeMapSchema = z.record(z.string(), AttributeValueSchema);

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
    ApproximateCreationDateTime: z.number().positive(),
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

/** Turns the base64 text of B and BS values into bytes, as the SDK's codec expects. */
export function attributeMapFromJson(map: Record<string, unknown>): Record<string, AttributeValue> {
  const decode = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  const value = (v: Record<string, unknown>): AttributeValue => {
    if (typeof v.B === "string") return { B: decode(v.B) };
    if (Array.isArray(v.BS)) return { BS: (v.BS as string[]).map(decode) };
    if (v.M) return { M: attributeMapFromJson(v.M as Record<string, unknown>) };
    if (Array.isArray(v.L)) return { L: (v.L as Record<string, unknown>[]).map(value) };
    return v as unknown as AttributeValue;
  };
  return Object.fromEntries(
    Object.entries(map).map(([k, v]) => [k, value(v as Record<string, unknown>)]),
  );
}
