/**
 * The items of one data file of a DynamoDB export, read as a stream in pages: the
 * gzipped object is decompressed as it arrives and cut into lines, so memory holds one
 * page of items and never the file (docs/sync-semantics.md, "Backfills from an export").
 *
 * Each line of a full export in DynamoDB JSON is one item, `{"Item": {...}}`, with its
 * numbers as text and its binaries as base64 (AWS Developer Guide, "DynamoDB table
 * export output format", "DynamoDB JSON":
 * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html).
 *
 * A file is checked whole as it is read: every line must be an item, the lines must
 * number what the files manifest says, and the bytes must have the manifest's MD5. A load
 * resumed from a checkpoint passes `fromLine`; the lines before it are read (a gzip
 * stream cannot be entered in the middle) and checked, but not returned.
 *
 * @module
 */

import type { AttributeValue } from "./dynamo_commands.ts";
import { ValueError } from "./dynamo_decoder.ts";
import type { ExportDataFile } from "./export_manifest.ts";
import { attributeMapFromJson } from "./attribute_binaries.ts";
import { itemText, READ_QUIET_MS, watchedBytes } from "./export_bytes.ts";

/** A page of a data file's items. */
export interface ExportPage {
  items: Record<string, AttributeValue>[];
  /** The lines read up to the end of this page: where the next page starts. */
  nextLine: number;
  /** Whether this is the file's last page (then the file was checked whole). */
  done: boolean;
}

/** A data file that cannot be loaded as it is, with its key, the line and why. */
export class ExportDataError extends Error {
  constructor(file: string, problem: string) {
    super(`export data file ${file}: ${problem}`);
    this.name = "ExportDataError";
  }
}

/**
 * A data file whose bytes stopped before their end (the connection to S3 broken, a read
 * that timed out): reading it again may pass. Bytes that are not gzip (or not UTF-8) are
 * an {@link ExportDataError}. Its `code` is the cause's (`ECONNRESET`, say), if any.
 */
export class ExportReadError extends ExportDataError {
  readonly code?: string;
  constructor(file: string, problem: string, code?: string) {
    super(file, problem);
    this.name = "ExportReadError";
    this.code = code;
  }
}

/** The source table's key, which every one of its items holds: attributes and types. */
export interface TableKey {
  /** The source table's name, for the error. */
  table: string;
  attributes: readonly { name: string; type: "S" | "N" | "B" }[];
}

/**
 * Reads one line's item; `line` is 1-based, for the error. An item without one of `key`'s
 * attributes (when given), or with it of another type, is refused: DynamoDB holds no such item, so the
 * file is not the table's (another table's export, a file put in its place). Mapped on,
 * it would be dead-lettered without a key, and the backfill's end would then remove the
 * rows the file should have held.
 */
function itemOf(
  text: string,
  file: string,
  line: number,
  key: TableKey | undefined,
): Record<string, AttributeValue> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ExportDataError(file, `line ${line} is not JSON (${(error as Error).message})`);
  }
  const item = (value as { Item?: unknown } | null)?.Item;
  if (typeof item !== "object" || item === null || Array.isArray(item)) {
    throw new ExportDataError(file, `line ${line} is not an {"Item": {...}} line`);
  }
  let attributes: Record<string, AttributeValue>;
  try {
    attributes = attributeMapFromJson(item as Record<string, unknown>);
  } catch (error) {
    if (error instanceof ValueError) {
      throw new ExportDataError(file, `line ${line}: ${error.message}`);
    }
    throw error;
  }
  for (const { name, type } of key?.attributes ?? []) {
    const value = attributes[name] as unknown;
    if (typeof value !== "object" || value === null || !(type in value)) {
      const found = typeof value === "object" && value !== null
        ? `one of type ${Object.keys(value).join("")}`
        : value === undefined
        ? "none"
        : "one that is no attribute value";
      throw new ExportDataError(
        file,
        `line ${line}: the item has no key attribute ${name} of type ${type} (${found}): not an item of ${
          key!.table
        }`,
      );
    }
  }
  return attributes;
}

/**
 * The most text of items a page holds: a page ends at `pageSize` items or at this much,
 * whichever comes first, so that a page of big items (DynamoDB's are up to 400 KB each)
 * stays a few MB in memory, as a Scan's page is 1 MB at most.
 */
export const PAGE_TEXT_CHARS = 4 * 2 ** 20;

/**
 * The longest line a data file may have. An item is 400 KB at most in DynamoDB, a few
 * times that as DynamoDB JSON; a line longer than this is no item, and is refused before
 * it grows without bound in memory.
 */
export const MAX_LINE_CHARS = 16 * 2 ** 20;

/**
 * How much text a loader reads past, going back to its checkpoint, between two calls of
 * {@link ExportPagesOptions.whileSkipping} (64 MB: well under a second of reading, so a
 * file's 60 s lease is renewed long before it runs out).
 */
export const SKIP_HEARTBEAT_CHARS = 64 * 2 ** 20;

/** What {@link exportPages} may be given besides the file (tests make the limits small). */
export interface ExportPagesOptions {
  /** A page's most text (default {@link PAGE_TEXT_CHARS}). */
  pageChars?: number;
  /** A line's most text (default {@link MAX_LINE_CHARS}). */
  lineChars?: number;
  /** How long a read of the bytes may wait for one (default {@link READ_QUIET_MS}). */
  quietMs?: number;
  /** Text read past between calls of `whileSkipping` (default {@link SKIP_HEARTBEAT_CHARS}). */
  skipChars?: number;
  /**
   * Awaited every `skipChars` of text read past before `fromLine` (a gzip stream cannot
   * seek, so a file taken up from its checkpoint is read from its start): the loader
   * keeps its lease there. What it throws ends the pages.
   */
  whileSkipping?: (line: number) => Promise<void>;
  /** The table's key: an item without it is refused ({@link itemOf}). None: unchecked. */
  key?: TableKey;
}

/**
 * The pages of `file`'s items from `body` (the gzipped object's bytes), `pageSize` items
 * (or {@link PAGE_TEXT_CHARS} of their text) each, starting at line `fromLine` (0: the
 * first). The last page has `done` set, and may be empty. Throws {@link ExportDataError}
 * on a line that is not an item or is longer than {@link MAX_LINE_CHARS}, a line count or
 * an MD5 that differs from the manifest's.
 */
export async function* exportPages(
  body: ReadableStream<Uint8Array>,
  file: ExportDataFile,
  pageSize: number,
  fromLine = 0,
  options: ExportPagesOptions = {},
): AsyncGenerator<ExportPage> {
  const bytes = watchedBytes(body, options.quietMs ?? READ_QUIET_MS);
  const text = itemText(bytes.stream);
  const pageLimit = options.pageChars ?? PAGE_TEXT_CHARS;
  const lineLimit = options.lineChars ?? MAX_LINE_CHARS;
  const skipLimit = options.skipChars ?? SKIP_HEARTBEAT_CHARS;
  let skipped = 0; // text read past before fromLine since the last heartbeat
  let heartbeatFailure: unknown; // thrown by whileSkipping: passed on as it is
  let rest = "";
  let line = 0;
  let items: Record<string, AttributeValue>[] = [];
  let pageChars = 0;
  const take = (content: string) => {
    line++;
    // Every line, not only the one a read ends within: a long line that ends inside one
    // decompressed chunk would otherwise pass, and how a file's bytes are cut into reads
    // would decide whether it is refused.
    if (content.length > lineLimit) {
      throw new ExportDataError(
        file.key,
        `line ${line} runs past ${lineLimit} characters: it is no item of an export`,
      );
    }
    // Refused before the page with the line is handed on: its rows would be written with
    // the export's time, and the file is not the one its manifest describes.
    if (line > file.itemCount) {
      throw new ExportDataError(
        file.key,
        `holds more than the ${file.itemCount} items the files manifest says (line ${line})`,
      );
    }
    if (line > fromLine) {
      items.push(itemOf(content, file.key, line, options.key));
      pageChars += content.length;
    } else {
      skipped += content.length;
    }
  };
  try {
    for await (const chunk of text) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      if (rest.length > lineLimit) {
        throw new ExportDataError(
          file.key,
          `line ${line + lines.length + 1} runs past ${lineLimit} characters without ` +
            "an end: it is no item of an export",
        );
      }
      for (const content of lines) {
        take(content);
        if (items.length === pageSize || pageChars >= pageLimit) {
          yield { items, nextLine: line, done: false };
          items = [];
          pageChars = 0;
        }
      }
      if (skipped >= skipLimit && options.whileSkipping) {
        skipped = 0;
        await options.whileSkipping(line).catch((error) => {
          heartbeatFailure = error;
          throw error;
        });
      }
    }
  } catch (error) {
    if (error instanceof ExportDataError || error === heartbeatFailure) throw error;
    // "For partitions that are empty, your export request will create an empty file" (AWS
    // Developer Guide, "DynamoDB table export output format"): no bytes at all, which is
    // not a gzip stream. It holds no line; its count and MD5 are checked below.
    if (!(bytes.ended && bytes.count === 0)) {
      // Deno's DecompressionStream reads one gzip member, and says only this of bytes
      // after it (several members joined, as some AWS services write, or trailing data).
      const message = (error as Error).message === "failed to write whole buffer"
        ? "it has bytes after its first gzip stream (several gzip members joined, or " +
          "trailing data), which this loader does not read"
        : (error as Error).message;
      const problem = `unreadable after line ${line}: ${message}`;
      if (!bytes.broken) {
        throw new ExportDataError(file.key, `${problem} (after ${bytes.count} bytes of it)`);
      }
      throw new ExportReadError(file.key, problem, (bytes.broken.error as { code?: string }).code);
    }
  }
  if (rest !== "") take(rest);
  if (line !== file.itemCount) {
    throw new ExportDataError(
      file.key,
      `holds ${line} items, but the files manifest says ${file.itemCount}`,
    );
  }
  const digest = bytes.digest();
  if (digest !== file.md5Checksum) {
    throw new ExportDataError(
      file.key,
      `its MD5 is ${digest}, but the files manifest says ${file.md5Checksum}: it is not the file the export wrote`,
    );
  }
  yield { items, nextLine: line, done: true };
}
