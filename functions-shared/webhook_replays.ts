/**
 * The webhook's first refusal of a replay (webhook.ts): the `webhook-id`s an isolate
 * accepted lately, each kept until its timestamp leaves the tolerance window (after that
 * the timestamp check refuses a replay anyway), and the 409 a replay gets. A cheap first
 * refusal only, without a round trip: `sync.webhook_deliveries`, written in the
 * transaction that applies a batch, is the authority shared by every isolate.
 *
 * @module
 */

import { errorResponse } from "./http.ts";
import { TIMESTAMP_TOLERANCE_SECONDS } from "./webhook_headers.ts";

/**
 * The `webhook-id`s accepted by this isolate, each until its timestamp leaves the
 * tolerance window (after that the timestamp check refuses a replay anyway). A cheap
 * first refusal only: `sync.webhook_deliveries` is the authority.
 */
export class RecentWebhookIds {
  #expiries = new Map<string, number>();
  #nextPruneAt = 0;

  /** Whether `id` was accepted and has not expired at `nowMs`. */
  has(id: string, nowMs: number): boolean {
    const expiry = this.#expiries.get(id);
    return expiry !== undefined && expiry > nowMs;
  }

  /** Remembers `id` (sent with unix-seconds `timestamp`); drops expired ids now and then. */
  remember(id: string, timestamp: number, nowMs: number): void {
    this.#expiries.set(id, (timestamp + TIMESTAMP_TOLERANCE_SECONDS) * 1000);
    if (nowMs < this.#nextPruneAt) return;
    this.#nextPruneAt = nowMs + 10_000;
    for (const [known, expiry] of this.#expiries) {
      if (expiry <= nowMs) this.#expiries.delete(known);
    }
  }

  /** How many ids are held (expired ones included until the next prune). */
  get size(): number {
    return this.#expiries.size;
  }
}

/** The 409 for a replayed `webhook-id`. */
export function replayRefused(webhookId: string): Response {
  return errorResponse(
    409,
    `webhook-id ${webhookId} was already accepted within the last ` +
      `${TIMESTAMP_TOLERANCE_SECONDS} s; this replay was refused and nothing was applied`,
  );
}
