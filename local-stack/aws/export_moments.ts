/**
 * The moments the items of an export (exports.ts) are as at. AWS Developer Guide,
 * "DynamoDB data export to Amazon S3: how it works"
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.HowItWorks.html):
 * "The request time and the time of the last update included in the data lake export
 * request may vary within a one-minute time window. For example, if you submit the request
 * at 2:25 PM, the output is guaranteed to contain all data committed to the table up to
 * 2:24, and data committed after 2:26 will not be included. The output may or may not
 * contain data modifications made between 2:24 and 2:26. Exported data is also not
 * transactionally consistent."
 *
 * AWS's times there are whole minutes; read pessimistically, a request at 2:25:59 is
 * guaranteed only what was committed by 2:24:00. So each item of an export is the item as
 * it was at its own random moment: for every key written within the window (the proxy's
 * recent writes, history.ts), a moment is drawn uniformly from the window's start
 * ({@link windowStart}: the export time's minute, less a minute; from 60 to 120 s before
 * the export time) to the moment the export's items are read, and the key's image then
 * is taken (absent if it was deleted, or not yet created, then); the other keys are as a
 * consistent Scan reads them. The items are read when the export completes, `minExportMs`
 * (2 s by default) after its request, so the future half of AWS's window is covered only
 * up to the export's own duration: AWS may include changes up to a minute after the
 * export time, the stand-in those up to its completion, a subset of what AWS may do (and
 * no moment is drawn more than a minute after the export time, should the stand-in read
 * later than that). The past half, the one that can make an export older than its export
 * time, is emulated whole.
 *
 * @module
 */

import type { Item } from "./capacity.ts";
import { keyOf, keyText, type Random } from "./history.ts";

/**
 * AWS's one-minute window (above): how far before its minute an export's items may be as
 * at, and how far after its time. The stand-in's own constant: the product has its own
 * (functions-shared/export_manifest.ts), which this one must not stand in for.
 */
export const EXPORT_WINDOW_MS = 60_000;

/** A minute of the clock, which AWS's times (above) are whole ones of. */
const MINUTE_MS = 60_000;

/**
 * The earliest moment an export of `exportTime` (ms since the epoch) may be as at: its
 * minute (floored), less {@link EXPORT_WINDOW_MS}. Before it, every change is in the export.
 */
export function windowStart(exportTime: number): number {
  return Math.floor(exportTime / MINUTE_MS) * MINUTE_MS - EXPORT_WINDOW_MS;
}

/**
 * How long the proxy keeps the recent writes exports take their items' versions from
 * (proxy.ts): 4 minutes. Its versions must reach back to {@link windowStart}, up to 2
 * minutes before the export time, from when the export is read (2 s after it by default,
 * `minExportMs`): with 3 minutes, a read later than a minute after the export time (the
 * latest moment drawn) could find a key's older versions forgotten; with 4, it keeps a
 * minute's margin past that.
 */
export const RECENT_WRITES_MS = 4 * 60_000;

/**
 * The recent versions of items an export's moments are taken from: the proxy's recent
 * writes (a History, history.ts). Tables are `scope/table` (scope.ts).
 */
export interface ExportVersions {
  /** The keys of a table written within the window. */
  keys(table: string): Item[];
  /** A key's image at `moment`: null when absent then, undefined when it has no versions. */
  at(table: string, key: Item, moment: number): Item | null | undefined;
}

/** What {@link exportItems} needs: the table as read, and its recent versions. */
export interface ExportRead {
  /** The table's items, as a consistent Scan read them at `readAt`. */
  scanned: Item[];
  /** The table, as the versions name it: `scope/table`. */
  table: string;
  /** The names of the table's key attributes (DescribeTable's KeySchema). */
  keyNames: string[];
  /** The export's time and when its items were read (ms since the epoch). */
  exportTime: number;
  readAt: number;
  /** None: the items are the Scan's. */
  versions: ExportVersions | undefined;
  random: Random;
}

/**
 * A moment drawn uniformly from {@link windowStart} to `readAt`, or to a minute after
 * `exportTime` if it was read later than that (AWS never includes those changes).
 */
export function exportMoment(exportTime: number, readAt: number, random: Random): number {
  const from = windowStart(exportTime);
  const to = Math.min(readAt, exportTime + EXPORT_WINDOW_MS);
  return from + random() * (to - from);
}

/**
 * The items of an export: each key written within the window as it was at its own
 * {@link exportMoment} (left out if absent then), the others as scanned. The scanned
 * items' order is kept; keys written but not scanned (deleted since) come after them.
 */
export function exportItems(read: ExportRead): Item[] {
  const { scanned, table, keyNames, versions } = read;
  if (!versions) return scanned;
  const imageAt = (key: Item) =>
    versions.at(table, key, exportMoment(read.exportTime, read.readAt, read.random));
  const written = new Map(versions.keys(table).map((key) => [keyText(key), key]));
  const items: Item[] = [];
  for (const item of scanned) {
    const text = keyText(keyOf(item, keyNames));
    const key = written.get(text);
    written.delete(text);
    // undefined: no versions held (any more): the key was not written within the window.
    const image = key ? imageAt(key) : undefined;
    if (image === undefined) items.push(item);
    else if (image !== null) items.push(image);
  }
  for (const key of written.values()) {
    const image = imageAt(key);
    if (image) items.push(image);
  }
  return items;
}
