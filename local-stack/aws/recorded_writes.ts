/**
 * A write forwarded by the DynamoDB proxy (local-stack/aws/proxy.ts) with what it changed
 * noted: the current images of the keys it writes (current_images.ts) read before and
 * after it, for the stale reads' history (history.ts), the recent writes exports read
 * their items' versions from (exports.ts), and the stream records' times
 * (stream_times.ts). With stream times, one write of a key goes at a time (key_locks.ts),
 * so that the images read around it are its own, and it is held back from the last
 * moments of a second, so that it lands within one.
 *
 * @module
 */

import type { Item } from "./capacity.ts";
import { imageId } from "./current_images.ts";
import { type History, keyText } from "./history.ts";
import type { KeyLocks } from "./key_locks.ts";
import type { StreamTimes } from "./stream_times.ts";

/** What {@link sendRecorded} needs: the proxy's, shared by every write. */
export interface WriteRecording {
  locks: KeyLocks;
  /** The stale reads' history, recorded when `stale` (below). */
  history: History;
  /** The recent writes, for exports (export_moments.ts): every successful write recorded. */
  recentWrites: History;
  /** When given, every write's images are noted for its stream records' times. */
  streamTimes: StreamTimes | undefined;
  now: () => number;
}

/** One write to send: its keys and how to read their images and send it. */
export interface RecordedWrite {
  /** The request's scope (scope.ts): the history's and stream times' tables are `scope/table`. */
  scope: string;
  /** The keys it writes, by table (stale_reads.ts, `writtenKeys`); none: nothing noted. */
  written: { table: string; key: Item }[];
  /** Whether stale reads are on: the history records what it changed. */
  stale: boolean;
  /** The current images of keys, by `imageId` (current_images.ts). */
  images: (keys: { table: string; key: Item }[]) => Promise<Map<string, Item | null>>;
  /** Sends the write on to DynamoDB Local. */
  send: () => Promise<Response>;
}

/**
 * Sends `write` and answers DynamoDB Local's response and its text, having noted its keys'
 * images before and after it: in the recent writes when it succeeded (and in the history
 * when `stale` too), and in the stream times whatever the answer (a refused write changed
 * nothing; its images say so).
 */
export async function sendRecorded(
  { locks, history, recentWrites, streamTimes, now }: WriteRecording,
  { scope, written, stale, images, send }: RecordedWrite,
): Promise<{ response: Response; text: string }> {
  // One write of a key at a time, so that the images read around it are its own.
  const release = streamTimes && written.length > 0
    ? await locks.lock(written.map(({ table, key }) => `${scope}/${table}\0${keyText(key)}`))
    : () => {};
  const landed = streamTimes && written.length > 0 ? streamTimes.inFlight() : () => {};
  try {
    // The images before the write, for keys the history does not hold by the time the
    // write is recorded (read for every key: a sweep may drop a key's history meanwhile).
    const before = written.length > 0 ? await images(written) : new Map();
    const wait = streamTimes && written.length > 0 ? streamTimes.delayBeforeForwarding(now()) : 0;
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const forwardedAt = now();
    const response = await send();
    const text = await response.text();
    const answeredAt = now();
    // A refused write changed nothing; its images say so (and a stream has no record of it).
    if (written.length > 0 && (response.ok || streamTimes)) {
      const after = await images(written);
      for (const { table, key } of written) {
        const id = imageId(table, key);
        const [was, is] = [before.get(id) ?? null, after.get(id) ?? null];
        if (response.ok) recentWrites.record(`${scope}/${table}`, key, was, is, answeredAt);
        if (stale && response.ok) history.record(`${scope}/${table}`, key, was, is, answeredAt);
        streamTimes?.recordWrite(`${scope}/${table}`, key, was, is, forwardedAt, answeredAt);
      }
    }
    return { response, text };
  } finally {
    landed();
    release();
  }
}
