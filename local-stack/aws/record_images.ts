/**
 * What the stream records' times (stream_times.ts) compare to match a stream record to
 * its write: the record as GetRecords' answer carries it, and the canonical digest of an
 * image, by which a record's images and those a write left are told equal whatever the
 * order of their attributes and set members.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { Item } from "./capacity.ts";

/** A stream record as the JSON protocol carries it (GetRecords' `Records[]`). */
export interface WireStreamRecord {
  eventName?: string;
  dynamodb?: {
    ApproximateCreationDateTime?: number;
    Keys?: Item;
    NewImage?: Item;
    OldImage?: Item;
    SequenceNumber?: string;
    StreamViewType?: string;
  };
}

/** The canonical text of an image: attributes and set members sorted; null when absent. */
export function imageDigest(image: Item | null | undefined): string {
  if (!image) return "absent";
  const canonical = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(canonical);
    if (value && typeof value === "object") {
      return Object.keys(value).sort().map((name) => {
        const inner = (value as Record<string, unknown>)[name];
        const sorted = (name === "SS" || name === "NS" || name === "BS") && Array.isArray(inner)
          ? [...inner].sort()
          : inner;
        return [name, canonical(sorted)];
      });
    }
    return value;
  };
  return createHash("sha1").update(JSON.stringify(canonical(image))).digest("base64");
}
