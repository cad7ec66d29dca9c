/**
 * The `mmp-toledo-sync` webhook (interfaces.md): verify the signature, check and parse
 * the body, map each record through the table registry, apply the batch in one
 * transaction through `sync.merge_changes`, dead-letter what cannot be mapped, and
 * answer with counts.
 *
 * Statuses: 200 with `{received, applied, skipped, deadLettered}`; 400 malformed JSON
 * or envelope (naming the path); 401 signature or timestamp; 405 not POST; 413 body
 * over 6 MiB; 415 not JSON; 503 with Retry-After when the database is unavailable.
 * Whatever the refusal, nothing is applied.
 *
 * @module
 */

import type postgres from "postgres";
import { errorResponse, json, methodNotAllowed } from "./http.ts";
import {
  type DeadLetter,
  mapDirect,
  type Mapped,
  mapStreamRecord,
  parseJsonExact,
  type TableChange,
} from "./record_mapping.ts";
import { applyChanges, isDatabaseUnavailable } from "./sync_db.ts";
import { parseWebhookBody } from "./webhook_envelope.ts";
import { webhookProblem } from "./webhook_signing.ts";

/** The largest body accepted: 6 MiB, Lambda's own payload limit. */
export const MAX_BODY_BYTES = 6 * 1024 * 1024;
/** Seconds a sender should wait after a 503. */
export const RETRY_AFTER_SECONDS = 5;

/** What the webhook needs from its environment. */
export interface WebhookDeps {
  /** SYNC_WEBHOOK_SECRET: one `whsec_...` secret, or two separated by a comma. */
  secret: string | undefined;
  sql: postgres.Sql;
  maxBodyBytes?: number;
}

/** Reads a body up to `limit` bytes; undefined when it is longer. */
async function readLimited(req: Request, limit: number): Promise<string | undefined> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > limit) return undefined;
  if (!req.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req.body) {
    size += chunk.byteLength;
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(bytes);
}

/** Maps every record of a body; splits the results into changes and dead letters. */
export function mapBody(body: ReturnType<typeof parseWebhookBody> & { ok: true }): {
  received: number;
  changes: TableChange[];
  deadLetters: DeadLetter[];
} {
  const mapped: Mapped[] = body.body.kind === "records"
    ? body.body.records.map(mapStreamRecord)
    : [mapDirect(body.body)];
  return {
    received: mapped.length,
    changes: mapped.flatMap((m) => (m.ok ? [m.value] : [])),
    deadLetters: mapped.flatMap((m) => (m.ok ? [] : [m.deadLetter])),
  };
}

/** Handles one webhook request. */
export async function handleWebhook(req: Request, deps: WebhookDeps): Promise<Response> {
  if (req.method !== "POST") return methodNotAllowed("POST");
  const contentType = req.headers.get("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(contentType)) {
    return errorResponse(
      415,
      `content-type must be application/json, not ${contentType || "missing"}`,
    );
  }
  const limit = deps.maxBodyBytes ?? MAX_BODY_BYTES;
  const text = await readLimited(req, limit);
  if (text === undefined) return errorResponse(413, `body is larger than ${limit} bytes`);

  const problem = webhookProblem(deps.secret, req.headers, text);
  if (problem) return errorResponse(401, problem);

  let parsed: unknown;
  try {
    parsed = parseJsonExact(text);
  } catch (error) {
    return errorResponse(400, `body is not valid JSON: ${(error as Error).message}`);
  }
  // The Lambda form is checked on plain JSON; the direct form keeps numbers exact.
  const envelope = parseWebhookBody(
    typeof parsed === "object" && parsed !== null && "records" in parsed
      ? JSON.parse(text)
      : parsed,
  );
  if (!envelope.ok) return errorResponse(400, `malformed envelope at ${envelope.problem}`);

  const { received, changes, deadLetters } = mapBody(envelope);
  for (const letter of deadLetters) {
    console.warn(`dead letter: ${letter.reason} (event ${letter.eventId ?? "direct"})`);
  }
  try {
    const result = await deps.sql.begin((tx) => applyChanges(tx, changes, deadLetters));
    return json(200, {
      received,
      applied: result.applied,
      skipped: received - result.applied - result.deadLettered,
      deadLettered: result.deadLettered,
    });
  } catch (error) {
    if (isDatabaseUnavailable(error)) {
      console.error(`database unavailable: ${(error as Error).message}`);
      return errorResponse(503, "the database is unavailable; nothing was applied, retry later", {
        "retry-after": String(RETRY_AFTER_SECONDS),
      });
    }
    console.error("applying the batch failed:", error);
    return errorResponse(
      500,
      `applying the batch failed, nothing was applied: ${(error as Error).message}`,
    );
  }
}
