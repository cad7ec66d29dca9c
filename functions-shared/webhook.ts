/**
 * The `mmp-toledo-sync` webhook (docs/interfaces.md): verify the signature, check and parse
 * the body, map each record through the table registry, apply the batch in one
 * transaction through `sync.merge_changes`, dead-letter what cannot be mapped, and
 * answer with counts.
 *
 * The cheap checks come before the expensive ones: the secret setting (checked once at
 * cold start), the method, the content type, the three signature headers and the
 * timestamp, all before the body is read; then the body's size while it is read; then
 * the HMAC; then the replay check; then JSON and the envelope; then the database.
 *
 * Statuses: 200 with `{received, applied, skipped, deadLettered}`; 400 malformed JSON
 * or envelope (naming the path); 401 missing headers, a timestamp more than 300 s from
 * now, or a signature that matches no secret; 405 not POST; 409 a `webhook-id` already
 * accepted within the replay window; 413 body over 6 MiB; 415 not JSON; 503 with
 * Retry-After when the database is unavailable, and with `x-sync-refusal: misconfigured`
 * when SYNC_WEBHOOK_SECRET is malformed (every request, naming which secret and why) or
 * the database refuses SYNC_DB_URL's settings (a login, a database name, a certificate),
 * with `x-sync-refusal: read-only` when the database is read-only (a nearly full disk),
 * and with `x-sync-refusal: cut-over` after the cutover (409 for a person's direct
 * request, which no retry would pass). Whatever the refusal, nothing is applied.
 *
 * Replays: each accepted `webhook-id` is recorded in `sync.webhook_deliveries` in the
 * same transaction that applies its batch (the database is the authority, shared by
 * every isolate), and in a small per-isolate map (`RecentWebhookIds`, webhook_replays.ts) that refuses
 * a replay without a round trip. A request the database refuses (503) rolls back, so the
 * sender's retry with the same id still applies.
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
  type TableChange,
} from "./record_mapping.ts";
import { logDeadLetters } from "./dead_letter_writer.ts";
import { readOnlyRefusal } from "./read_only_answer.ts";
import { recordsToNote } from "./stream_progress.ts";
import {
  isCutOver,
  isDatabaseMisconfigured,
  isDatabaseUnavailable,
  isTransientFailure,
  mayHaveCommitted,
} from "./db_errors.ts";
import { applyWebhookBatch } from "./webhook_apply.ts";
import { RecentWebhookIds, replayRefused } from "./webhook_replays.ts";
import { parseWebhookBody, parseWebhookJson } from "./webhook_envelope.ts";
import { checkWebhookHeaders } from "./webhook_headers.ts";
import { describeError, errorIdentifiers, withoutQuotes } from "./error_text.ts";
import type { WebhookVerifier } from "./webhook_signing.ts";

const UTF8 = new TextDecoder("utf-8", { fatal: true });
/** The largest body accepted: 6 MiB, Lambda's own payload limit. */
export const MAX_BODY_BYTES = 6 * 1024 * 1024;
/** Seconds a sender should wait after a 503. */
export const RETRY_AFTER_SECONDS = 5;

/** What the webhook needs from its environment; built once, at cold start. */
export interface WebhookDeps {
  /** Built from SYNC_WEBHOOK_SECRET by `createWebhookVerifier`. */
  verifier: WebhookVerifier;
  /** The `webhook-id`s this isolate accepted lately. */
  recentIds: RecentWebhookIds;
  sql: postgres.Sql;
  maxBodyBytes?: number;
  /** The clock, in milliseconds since the epoch (tests set it). */
  now?: () => number;
  /**
   * Where its lines go (default `console.error`): the function gives it an isolate's
   * window (log_window.ts), since a database down refuses every shard's batch at once.
   */
  log?: (line: string) => void;
}

/**
 * Reads a body up to `limit` bytes; undefined when it is longer. A body with a declared
 * length within the limit (the Lambda's, always) is read in one piece: the server reads
 * no more than the declared length (HTTP/1.1 framing), and the size is checked again
 * after. Only a body without one is streamed, counting, so that a long one is refused
 * before it is all in memory.
 */
async function readLimited(req: Request, limit: number): Promise<Uint8Array | undefined> {
  // Only a length of digits is a declaration (RFC 9110 §8.6); any other is streamed.
  const header = req.headers.get("content-length");
  const declared = header !== null && /^\d+$/.test(header) ? Number(header) : undefined;
  if (declared !== undefined && declared > limit) return undefined;
  if (!req.body) return new Uint8Array(0);
  if (declared !== undefined) {
    const whole = new Uint8Array(await req.arrayBuffer());
    return whole.byteLength > limit ? undefined : whole;
  }
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
  return bytes;
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
  const verifier = deps.verifier;
  const log = deps.log ?? console.error;
  // The same for every request until the setting is fixed: 503, which the Lambda retries
  // as it is, not 500, which it takes for a body at fault and splits, batch after batch.
  if (!verifier.ok) {
    return errorResponse(503, `${verifier.problem}; nothing was applied`, {
      "retry-after": "60",
      "x-sync-refusal": "misconfigured",
    });
  }
  if (req.method !== "POST") return methodNotAllowed("POST");
  const contentType = req.headers.get("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(contentType)) {
    return errorResponse(
      415,
      `content-type must be application/json, not ${contentType || "missing"}`,
    );
  }
  const now = deps.now?.() ?? Date.now();
  const checked = checkWebhookHeaders(req.headers, now);
  if (!checked.ok) return errorResponse(401, checked.problem);
  const delivery = checked.delivery;

  const limit = deps.maxBodyBytes ?? MAX_BODY_BYTES;
  const bytes = await readLimited(req, limit);
  if (bytes === undefined) return errorResponse(413, `body is larger than ${limit} bytes`);
  const problem = await verifier.verifySignature(delivery, bytes);
  if (problem) return errorResponse(401, problem);
  if (deps.recentIds.has(delivery.id, now)) return replayRefused(delivery.id);

  // JSON is UTF-8 (RFC 8259): bytes that are not are refused, not replaced by U+FFFD and
  // stored so.
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    return errorResponse(400, "body is not valid UTF-8");
  }
  let parsed: unknown;
  try {
    parsed = parseWebhookJson(text);
  } catch (error) {
    return errorResponse(400, `body is not valid JSON: ${withoutQuotes((error as Error).message)}`);
  }
  // Numbers exact where they matter; the envelope's schema reads the body in either form.
  const envelope = parseWebhookBody(parsed);
  if (!envelope.ok) return errorResponse(400, `malformed envelope at ${envelope.problem}`);

  const { received, changes, deadLetters } = mapBody(envelope);
  try {
    const outcome = await applyWebhookBatch(deps.sql, {
      webhookId: delivery.id,
      changes,
      deadLetters,
      // What the lost-record check compares with the stream (stream_progress.ts).
      records: recordsToNote(envelope.body),
    });
    deps.recentIds.remember(delivery.id, delivery.timestamp, now);
    if (outcome.replayed) return replayRefused(delivery.id);
    // Once committed: the lines name only letters that sync.dead_letters holds.
    logDeadLetters(
      [...deadLetters, ...outcome.refused],
      (l) => `dead letter: ${l.reason} (event ${l.eventId ?? "direct"})`,
      deps.log ?? console.warn,
    );
    return json(200, {
      received,
      applied: outcome.applied,
      skipped: received - outcome.applied - outcome.deadLettered,
      deadLettered: outcome.deadLettered,
    });
  } catch (error) {
    // Cut over (sync.enter_merge, SY005). A mapping left running: its records wait
    // (retried as they are) until they pass the mapping's maximum age. A person's direct
    // request would wait for ever: refused for good, with where to edit instead.
    if (isCutOver(error)) {
      log((error as Error).message);
      if (envelope.body.kind === "direct") {
        return errorResponse(
          409,
          `${(error as Error).message}; nothing was applied: edit the row in Supabase instead`,
          { "x-sync-refusal": "cut-over" },
        );
      }
      return errorResponse(503, `${(error as Error).message}; nothing was applied`, {
        "retry-after": "60",
        "x-sync-refusal": "cut-over",
      });
    }
    if (isDatabaseMisconfigured(error)) {
      // As for a malformed secret: retried as it is, never split for a fault of no body.
      // The function's log has it whole (the user's or database's name it quotes); the
      // answer, which the Lambda logs, without.
      const cause = withoutQuotes((error as Error).message);
      log(`the database refused the connection settings: ${describeError(error)}`);
      return errorResponse(
        503,
        `the database refused the function's connection settings (${cause}): check ` +
          "SYNC_DB_URL (its user, password, database and sslmode) and, for a certificate, " +
          "SYNC_DB_CA_CERT; nothing was applied",
        { "retry-after": "60", "x-sync-refusal": "misconfigured" },
      );
    }
    if (isDatabaseUnavailable(error)) {
      log(`database unavailable: ${describeError(error)}`);
      // Lost in flight, the batch may have committed with only its answer gone: said so,
      // so that a sender does not take the 409 of its retry for a loss. (The Lambda signs
      // each attempt with a new id, and the ordering guard skips records applied before.)
      const outcome = mayHaveCommitted(error)
        ? "the connection was lost during the batch, which may or may not have been " +
          "applied: send it again with the same webhook-id (a 409 then says it was)"
        : "nothing was applied, retry later";
      return errorResponse(503, `the database is unavailable; ${outcome}`, {
        "retry-after": String(RETRY_AFTER_SECONDS),
      });
    }
    // Retried as it is, a minute apart: the mode lasts until an operator acts.
    const readOnly = readOnlyRefusal(error, "the batch", "nothing was applied, retry later", log);
    if (readOnly) return readOnly;
    if (isTransientFailure(error)) {
      const code = (error as { code?: string }).code;
      // A lock wait past the batch's bound (sync.begin_webhook_delivery): what held it,
      // for the operator reading the Lambda's log, with the tables the batch merges into.
      const why = code === "55P03"
        ? `: a lock the batch into ${
          [...new Set(changes.map((c) => c.spec.targetTable))].sort().join(", ")
        } needs was held by another transaction past the webhook's lock wait, such as the ` +
          "table's merge lock (an export's chunk, a backfill's sweep) or one of its rows (an " +
          "open transaction)"
        : "";
      log(`the batch's statement failed for now: ${describeError(error)}`);
      return errorResponse(
        503,
        `the database could not apply the batch now (${code}${why}); nothing was applied, ` +
          "retry later",
        { "retry-after": String(RETRY_AFTER_SECONDS) },
      );
    }
    log(`applying the batch failed: ${describeError(error)}`);
    return errorResponse(
      500,
      `applying the batch failed, nothing was applied: ${withoutQuotes((error as Error).message)}${
        errorIdentifiers(error)
      } (the function's log has the whole error)`,
    );
  }
}
