/**
 * Reading back what the export stand-in wrote, for its tests (exports_test.ts,
 * export_window_test.ts): an export's items, through the loader's own manifest and
 * data-file readers.
 *
 * @module
 */

import { exportPages } from "../../../functions-shared/export_items.ts";
import { parseExportFiles, parseExportSummary } from "../../../functions-shared/export_manifest.ts";

type Body = Record<string, unknown>;

/**
 * The items of a completed export (its description `d`), read back from its files in
 * `objects` (by `bucket/key`, the bucket `exports`).
 */
export async function readBack(
  objects: Map<string, Uint8Array<ArrayBuffer>>,
  d: Body,
): Promise<Body[]> {
  const text = (key: string) => new TextDecoder().decode(objects.get(`exports/${key}`)!);
  const summary = parseExportSummary(text(String(d.ExportManifest)), "summary");
  const items: Body[] = [];
  for (const file of parseExportFiles(text(summary.manifestFilesKey), summary, "files")) {
    const body = new Blob([objects.get(`exports/${file.key}`)!]).stream();
    for await (const page of exportPages(body, file, 10)) items.push(...page.items);
  }
  return items;
}
