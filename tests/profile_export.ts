/**
 * Where the export backfill's time goes (issue 17, README "Where the time goes: the
 * backfill from an export"): `copies` copies of the demo data set, each step of the
 * loader timed on its own in this process (gunzip and line split, JSON.parse and the
 * file's checks, the mapping, the encoding), then each table merged in batches of `batch`
 * changes through `sync.merge_changes`. EMPTIES THE STACK'S TARGETS first. With
 * PROFILE_DUMP=1 it also writes the visitors' changes as one JSON array to
 * /tmp/profile-export-visitors.json, for timing the merge's statements in psql. Not a test.
 *
 * `STACK_PORT_OFFSET=… deno run -A tests/profile_export.ts [copies] [batch]`
 *
 * @module
 */
import { demoItems } from "../demo/demo_data.ts";
import { toWire } from "../functions-shared/change_wire.ts";
import { encodeJson } from "../functions-shared/dynamo_encoder.ts";
import { exportPages } from "../functions-shared/export_items.ts";
import { mapScannedItem } from "../functions-shared/record_mapping.ts";
import { TABLES } from "../functions-shared/table_registry.ts";
import { gzipItems } from "../local-stack/aws/export_layout.ts";
import { emptyTargets } from "../demo/load_report_data_set.ts";
import { connectDb } from "../functions-shared/sync_db.ts";
import { stack } from "./stack_clients.ts";

const sql = connectDb(stack.DATABASE_URL, 1);
await emptyTargets(sql);

const copies = Number(Deno.args[0] ?? 1);
const CHUNK = Number(Deno.args[1] ?? 1000);
const data = demoItems(7, copies);
const t = (label: string, ms: number, n: number) =>
  console.log(
    `${label.padEnd(44)} ${ms.toFixed(0).padStart(6)} ms  ${(n / ms * 1000).toFixed(0)} /s`,
  );
let all = { gunzip: 0, parse: 0, map: 0, encode: 0, items: 0, bytes: 0, json: 0 };
for (const spec of TABLES) {
  const items = data[spec.sourceTable] ?? [];
  if (items.length === 0) continue;
  const gz = await gzipItems(items as unknown as Record<string, unknown>[]);
  const bytes = new Uint8Array(gz.bytes);
  const md5 = gz.md5;
  const file = { key: spec.targetTable, itemCount: items.length, md5Checksum: md5, etag: "" };
  // gunzip + split only
  let s = performance.now();
  const text = await new Response(
    new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip")),
  ).text();
  const lines = text.split("\n");
  const gunzip = performance.now() - s;
  s = performance.now();
  const parsed: Record<string, unknown>[] = [];
  for await (const page of exportPages(new Blob([bytes]).stream(), file, 1000)) {
    parsed.push(...page.items);
  }
  const parse = performance.now() - s - 0;
  const readAt = new Date();
  s = performance.now();
  const changes = parsed.map((i) => mapScannedItem(spec, i, readAt));
  const map = performance.now() - s;
  s = performance.now();
  const json = encodeJson(changes.map((c) => c.ok ? toWire(c.value.change) : null));
  const encode = performance.now() - s;
  s = performance.now();
  for (let i = 0; i < changes.length; i += CHUNK) {
    const page = encodeJson(
      changes.slice(i, i + CHUNK).map((c) => c.ok ? toWire(c.value.change) : null),
    );
    await sql.unsafe(`select * from sync.merge_changes($1, $2::text::jsonb)`, [
      spec.targetTable,
      page,
    ]);
  }
  const merge = performance.now() - s;
  t(`  ${spec.targetTable} merge (encode again + round trip + Postgres)`, merge, items.length);
  all = {
    gunzip: all.gunzip + gunzip,
    parse: all.parse + parse,
    map: all.map + map,
    encode: all.encode + encode,
    items: all.items + items.length,
    bytes: all.bytes + text.length,
    json: all.json + json.length,
  };
  console.log(
    `${spec.targetTable}: ${items.length} items, ${lines.length} lines, ${
      (text.length / items.length).toFixed(0)
    } B/item in the export, ${(json.length / items.length).toFixed(0)} B/change`,
  );
}
t("gunzip + split", all.gunzip, all.items);
t("gunzip + split + JSON.parse + checks (exportPages)", all.parse, all.items);
t("mapping (mapScannedItem)", all.map, all.items);
t("encoding (toWire + encodeJson)", all.encode, all.items);
console.log(
  `export text ${(all.bytes / 2 ** 20).toFixed(1)} MB, changes ${
    (all.json / 2 ** 20).toFixed(1)
  } MB`,
);
await sql.end();
if (Deno.env.get("PROFILE_DUMP")) {
  const spec = TABLES.find((t) => t.targetTable === "firespring_visitors")!;
  const items = data[spec.sourceTable]!;
  const changes = items.map((i) => mapScannedItem(spec, i as never, new Date()));
  await Deno.writeTextFile(
    "/tmp/profile-export-visitors.json",
    encodeJson(changes.map((c) => c.ok ? toWire(c.value.change) : null)),
  );
}
