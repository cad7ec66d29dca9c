/**
 * The export files of `npm run bench -- export` (tests/bench_export.ts): `scale` copies of
 * the demo data set, in the demo's shapes with each copy's keys made its own, written
 * straight into the S3 stand-in in AWS's layout (one data file per table and copy), one
 * copy in memory at a time; or, with BENCH_EXPORT_REUSE=1, those an earlier run wrote.
 *
 * @module
 */

import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { demoItems } from "../demo/demo_data.ts";
import { TABLES } from "../functions-shared/table_registry.ts";
import { gzipItems } from "../local-stack/aws/export_layout.ts";
import { s3Client } from "../local-stack/aws/s3_client.ts";
import { s3Storage } from "../local-stack/aws/s3_storage.ts";
import { stack } from "./stack_clients.ts";

type Item = Record<string, Record<string, unknown>>;

/** The item with each key attribute's string value made copy `k`'s own. */
function ownKeys(item: Item, keys: string[], k: number): Item {
  if (k === 0) return item;
  const out = { ...item };
  for (const key of keys) {
    const value = out[key];
    if (value && typeof value.S === "string") out[key] = { S: `${value.S}-c${k}` };
  }
  return out;
}

/** Writes the export files; answers each source table's files. */
async function writeExport(scale: number, id: string) {
  const storage = s3Storage(s3Client(stack.S3_ENDPOINT));
  const files = new Map<string, { key: string; itemCount: number; md5: string }[]>();
  let items = 0;
  for (let k = 0; k < scale; k++) {
    const copy = demoItems(7, 1);
    for (const spec of TABLES) {
      const keys = spec.sourceKey.map((key) => key.name);
      const own = (copy[spec.sourceTable] ?? []).map((item) =>
        ownKeys(item as unknown as Item, keys, k)
      );
      const { bytes, md5 } = await gzipItems(own);
      const key = `bench/AWSDynamoDB/${id}/data/${spec.targetTable}-${k}.json.gz`;
      await storage.put(stack.EXPORT_BUCKET, key, bytes);
      const list = files.get(spec.sourceTable) ?? [];
      list.push({ key, itemCount: own.length, md5 });
      files.set(spec.sourceTable, list);
      items += own.length;
    }
    if (k % 10 === 9) console.log(`export files: ${k + 1} of ${scale} copies written`);
  }
  return { files, items };
}

/**
 * The export files of `scale` copies: written now, or, with BENCH_EXPORT_REUSE=1, the
 * ones an earlier run wrote into the S3 stand-in (their list kept in
 * .local/bench-export-<scale>.json), when their first file is still there. Says which.
 */
export async function exportFor(scale: number) {
  const cache = new URL(`../.local/bench-export-${scale}.json`, import.meta.url).pathname;
  if (Deno.env.get("BENCH_EXPORT_REUSE") === "1") {
    const kept = await Deno.readTextFile(cache).then(JSON.parse).catch(() => null);
    const first = kept?.files?.[0]?.[1]?.[0]?.key;
    const client = s3Client(stack.S3_ENDPOINT);
    const there = first &&
      await client.send(new HeadObjectCommand({ Bucket: stack.EXPORT_BUCKET, Key: first }))
        .then(() => true, () => false);
    client.destroy();
    if (there) {
      console.log(`export files: reusing the ${kept.items} items written at ${kept.writtenAt}`);
      return {
        id: `${kept.id}-${Date.now()}`,
        items: kept.items as number,
        files: new Map<string, { key: string; itemCount: number; md5: string }[]>(kept.files),
      };
    }
  }
  const id = `${Date.now()}-bench`;
  const { files, items } = await writeExport(scale, id);
  await Deno.writeTextFile(
    cache,
    JSON.stringify({ id, items, writtenAt: new Date().toISOString(), files: [...files] }),
  );
  return { id, files, items };
}
