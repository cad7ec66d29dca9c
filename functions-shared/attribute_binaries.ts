/**
 * The binaries of an item in DynamoDB JSON as bytes: a stream record or an export line
 * carries B and BS values as base64 text, and the SDK's codec, which the mapping shares,
 * expects bytes. Apart from the webhook's envelope (webhook_envelope.ts), so that the
 * backfill's and the validator's isolates do not load its schema library at boot.
 *
 * @module
 */

import type { AttributeValue } from "./dynamo_commands.ts";
import { ValueError } from "./dynamo_decoder.ts";
import { base64ToBytes } from "./dynamo_encoder.ts";
import { BASE64 } from "./webhook_attributes.ts";

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
    return base64ToBytes(text);
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
