/**
 * Delivery of a replayed range with the bisection Lambda's mapping would have done
 * (`BisectBatchOnFunctionError`): a body the webhook refuses as it is (a 400 or 500 on
 * its records, retries spent) is split in halves, each delivered in turn, down to single
 * records. A record refused alone is set aside and the rest delivered, in order, as the
 * mapping sends such a record to its on-failure destination and reads on. A body the
 * webhook cannot take now (its retries spent on 503s, a secret it refuses) stops the
 * replay there: nothing after it is sent, so the range can be replayed again whole.
 *
 * @module
 */

import type { StreamRecord } from "../lambda/stream_records.ts";
import type { DeliveryOutcome } from "../lambda/webhook_delivery.ts";

/** How a bisected delivery ended. */
export interface BisectedDelivery {
  /** Records the webhook took. */
  delivered: number;
  /** Records it refused on their own, in order. */
  refused: StreamRecord[];
  /** The first record of the body that could not be delivered now, when one stopped it. */
  stoppedAt?: StreamRecord;
}

/**
 * Delivers `bodies` (records split as the forwarder sends them) with `send`, bisecting a
 * body it reports "refused" (see the module's doc).
 */
export async function deliverBisecting(
  bodies: StreamRecord[][],
  send: (records: StreamRecord[]) => Promise<DeliveryOutcome>,
): Promise<BisectedDelivery> {
  const result: BisectedDelivery = { delivered: 0, refused: [] };
  const go = async (records: StreamRecord[]): Promise<boolean> => {
    const outcome = await send(records);
    if (outcome === "delivered") {
      result.delivered += records.length;
      return true;
    }
    if (outcome === "later") {
      result.stoppedAt = records[0];
      return false;
    }
    if (records.length === 1) {
      result.refused.push(records[0]);
      return true;
    }
    const half = Math.ceil(records.length / 2);
    return await go(records.slice(0, half)) && await go(records.slice(half));
  };
  for (const body of bodies) {
    if (!await go(body)) break;
  }
  return result;
}
