/**
 * The stack's stream poller (Lambda's event source mapping here), started again after a
 * test stopped it: as `stack:up` starts it (local-stack/stack.ts), without the rest of
 * `stack:up` (the platform SQL, the migrations' push, every other part's check).
 *
 * @module
 */

import { DENO_PARTS, startDenoPart } from "../local-stack/deno_parts.ts";
import { stack } from "./stack_clients.ts";

/** Starts the stream poller when it is not running (a running one is left as it is). */
export async function startStreamPoller(): Promise<void> {
  const poller = DENO_PARTS.find((part) => part.name === "stream_poller")!;
  await startDenoPart(poller, stack);
}
