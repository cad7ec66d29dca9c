/**
 * Consistent point reads of one key of a source table (GetItem, or a Query of every
 * observation of a collapsed table's key), with the read's stamp on DynamoDB's clock:
 * what the validator's looks and repairs, the collapsed tables' re-reads and the
 * write-back read to decide a key.
 *
 * @module
 */

import { GetItemCommand, QueryCommand } from "./dynamo_commands.ts";
import type { CpuMeter } from "./cpu_meter.ts";
import type { DynamoClient } from "./dynamo_http.ts";
import type { TableSpec } from "./table_registry.ts";
import { type Item, pointReadKey, type RowKey } from "./validator_plan.ts";
import { pageStamp } from "./read_stamp.ts";

/** What a point read needs: the DynamoDB client of a region, and the isolate's meter if any. */
export interface PointReadDeps {
  dynamo: (region: string) => DynamoClient;
  cpu?: CpuMeter;
}

/**
 * The CPU each attempt of a point read's request is charged on the isolate's meter, none
 * of it in a measured step: signing it, sending it and parsing its answer. A signed
 * GetItem through the functions' client took 1.0–1.3 ms of CPU warm and 3.0 ms each in
 * its first 50 (plain Deno, the 2-core machine). Without it, a CI run's validator isolate
 * that read about 200 keys again (three looks at 64 divergent keys), then repaired them,
 * was killed at the 2 s hard limit while its estimate read 1,101 ms.
 */
export const POINT_READ_CPU_MS = 3;

/** Sends a point read's request, charging each of its attempts, answered or not. */
async function sentCharged<T extends { $metadata?: { attempts?: number } }>(
  deps: Pick<PointReadDeps, "cpu">,
  send: () => Promise<T>,
): Promise<T> {
  try {
    const answer = await send();
    deps.cpu?.charge(POINT_READ_CPU_MS * (answer.$metadata?.attempts ?? 1));
    return answer;
  } catch (error) {
    const attempts = (error as { $metadata?: { attempts?: number } }).$metadata?.attempts;
    deps.cpu?.charge(POINT_READ_CPU_MS * (attempts ?? 1));
    throw error;
  }
}

/**
 * Query pages (1 MB each) a collapsed key's point read takes at most in a validation's
 * look (validator_compare.ts) and in a repair (validator_repair.ts). Its items are held
 * together in the isolate (256 MB, where 1 MB of DynamoDB JSON takes several as objects),
 * so a partition past this is refused ({@link PartitionTooLarge}), rather than read into
 * an isolate the runtime would kill, again at every retry: the looks end and report the
 * keys as the last one found them, and a repair heals the table by a backfill.
 */
export const MAX_POINT_READ_PAGES = 8;

/**
 * A collapsed key whose partition holds more than a point read's pages: not read whole
 * (an isolate keeps what it reads), and so neither looked at again nor repaired key by
 * key; a backfill of the table brings its row up to date. Names the table and the key.
 */
export class PartitionTooLarge extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PartitionTooLarge";
  }
}

/**
 * The source's current items for one target key (all observations for a collapsed
 * table); at most `maxPages` Query pages (every caller passes MAX_POINT_READ_PAGES), past
 * which it throws {@link PartitionTooLarge}.
 */
export async function pointRead(
  deps: PointReadDeps,
  spec: TableSpec,
  key: RowKey,
  options: { maxPages?: number } = {},
): Promise<Item[]> {
  return (await pointReadAt(deps, spec, key, options)).items;
}

/**
 * {@link pointRead}, with the read's stamp: its first answer's `Date` less the round
 * trip, on DynamoDB's clock and no later than any of its reads (read_stamp.ts), which a
 * repair positions its changes at; and `readBefore`, an instant on that clock after all
 * of them: its last answer's `Date` (written after the read, truncated to the second)
 * plus a second; undefined when an answer had no `Date`.
 */
export async function pointReadAt(
  deps: PointReadDeps,
  spec: TableSpec,
  key: RowKey,
  options: { maxPages?: number } = {},
): Promise<{ items: Item[]; readAt: Date; readBefore?: Date }> {
  const maxPages = options.maxPages ?? Infinity;
  const client = deps.dynamo(spec.region);
  const sourceKey = pointReadKey(spec, key);
  const sentAt = Date.now();
  if (!spec.collapse) {
    const { Item, $metadata } = await sentCharged(deps, () =>
      client.send(
        new GetItemCommand({ TableName: spec.sourceTable, Key: sourceKey, ConsistentRead: true }),
      ));
    return {
      items: Item ? [Item] : [],
      readAt: pageStamp(sentAt, $metadata?.clock),
      readBefore: afterRead($metadata?.clock),
    };
  }
  const [hash] = Object.keys(sourceKey);
  const items: Item[] = [];
  let start: Item | undefined;
  let pages = 0;
  let readAt: Date | undefined;
  let readBefore: Date | undefined;
  do {
    const page = await sentCharged(deps, () =>
      client.send(
        new QueryCommand({
          TableName: spec.sourceTable,
          KeyConditionExpression: "#h = :h",
          ExpressionAttributeNames: { "#h": hash },
          ExpressionAttributeValues: { ":h": sourceKey[hash] },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      ));
    readAt ??= pageStamp(sentAt, page.$metadata?.clock);
    readBefore = afterRead(page.$metadata?.clock);
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
    pages++;
    if (start && pages >= maxPages) {
      throw new PartitionTooLarge(
        `${spec.sourceTable}: key ${
          JSON.stringify(key)
        }: its partition holds more than ${maxPages} Query pages of items (${items.length} read so far); a point read keeps them all in the isolate (256 MB), so it is not read whole: a backfill of the table (sync.start_backfill) brings its row up to date`,
      );
    }
  } while (start);
  return { items, readAt: readAt!, readBefore };
}

/** An instant after the read an answer with `reading` answered: its `Date` plus a second. */
function afterRead(reading: { serverMs: number } | undefined): Date | undefined {
  return reading ? new Date(reading.serverMs + 1000) : undefined;
}
