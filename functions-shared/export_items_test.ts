import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ExportDataError, type ExportPage, exportPages, ExportReadError } from "./export_items.ts";
import type { ExportDataFile } from "./export_manifest.ts";

async function gzip(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A data file of `lines`, delivered in chunks of 7 bytes (a line spans chunks). */
async function dataFile(lines: string[], over: Partial<ExportDataFile> = {}) {
  const bytes = await gzip(lines.map((l) => `${l}\n`).join(""));
  const file: ExportDataFile = {
    key: "p/AWSDynamoDB/x/data/f.json.gz",
    itemCount: lines.length,
    md5Checksum: createHash("md5").update(bytes).digest("base64"),
    etag: "e",
    ...over,
  };
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 7) controller.enqueue(bytes.slice(i, i + 7));
      controller.close();
    },
  });
  return { body, file };
}

/** The manifest's entry of a file of `bytes`. */
function fileOf(bytes: Uint8Array, key = "p/AWSDynamoDB/x/data/f.json.gz"): ExportDataFile {
  return {
    key,
    itemCount: 2,
    md5Checksum: createHash("md5").update(bytes).digest("base64"),
    etag: "e",
  };
}

async function pagesOf(gen: AsyncGenerator<ExportPage>): Promise<ExportPage[]> {
  const pages = [];
  for await (const page of gen) pages.push(page);
  return pages;
}

const item = (i: number) => JSON.stringify({ Item: { id: { S: `k${i}` }, n: { N: `${i}.50` } } });

Deno.test("a data file is read in pages of items, the last one marked done after the file is checked", async () => {
  const { body, file } = await dataFile([1, 2, 3, 4, 5].map(item));
  const pages = await pagesOf(exportPages(body, file, 2));
  assert.deepEqual(pages.map((p) => [p.items.map((i) => i.id.S), p.nextLine, p.done]), [
    [["k1", "k2"], 2, false],
    [["k3", "k4"], 4, false],
    [["k5"], 5, true],
  ]);
  assert.deepEqual(pages[0].items[0].n, { N: "1.50" });
});

Deno.test("a resumed read skips the lines before its checkpoint but still checks the whole file", async () => {
  const { body, file } = await dataFile([1, 2, 3, 4, 5].map(item));
  const pages = await pagesOf(exportPages(body, file, 10, 3));
  assert.deepEqual(pages.map((p) => [p.items.map((i) => i.id.S), p.nextLine, p.done]), [
    [["k4", "k5"], 5, true],
  ]);
});

Deno.test("reading back to a checkpoint calls whileSkipping, and what it throws ends the pages as it is", async () => {
  const lines = [1, 2, 3, 4, 5].map(item);
  const heartbeats: number[] = [];
  const resumed = await dataFile(lines);
  const pages = await pagesOf(exportPages(resumed.body, resumed.file, 10, 3, {
    skipChars: 1,
    whileSkipping: (line) => Promise.resolve(void heartbeats.push(line)),
  }));
  assert.equal(pages.at(-1)?.done, true);
  assert.ok(heartbeats.length >= 1, "the lease is kept while lines are read past");

  const fresh = await dataFile(lines);
  await pagesOf(exportPages(fresh.body, fresh.file, 10, 0, {
    skipChars: 1,
    whileSkipping: () => Promise.reject(new Error("not called: nothing is read past")),
  }));

  const lost = Object.assign(new Error("no longer holds the lease"), { code: "SY001" });
  const taken = await dataFile(lines);
  await assert.rejects(
    pagesOf(exportPages(taken.body, taken.file, 10, 3, {
      skipChars: 1,
      whileSkipping: () => Promise.reject(lost),
    })),
    (error) => error === lost,
  );
});

Deno.test("a file whose last line has no newline still yields that line", async () => {
  const bytes = await gzip(`${item(1)}\n${item(2)}`);
  const pages = await pagesOf(
    exportPages(new Blob([new Uint8Array(bytes)]).stream(), fileOf(bytes), 10),
  );
  assert.deepEqual(pages.map((p) => [p.items.map((i) => i.id.S), p.nextLine, p.done]), [
    [["k1", "k2"], 2, true],
  ]);
});

Deno.test("binaries arrive as bytes", async () => {
  const { body, file } = await dataFile([
    JSON.stringify({ Item: { id: { S: "a" }, b: { B: "AAE=" } } }),
  ]);
  const [page] = await pagesOf(exportPages(body, file, 10));
  assert.deepEqual(page.items[0].b, { B: new Uint8Array([0, 1]) });
});

Deno.test("a file that is not what its manifest says is refused, naming the file, the line and why", async () => {
  const cases: [string[], Partial<ExportDataFile>, RegExp][] = [
    [[item(1), "{oops"], {}, /f\.json\.gz: line 2 is not JSON/],
    [
      [item(1), JSON.stringify({ id: { S: "x" } })],
      {},
      /line 2 is not an \{"Item": \{\.\.\.\}\} line/,
    ],
    [[JSON.stringify({ Item: { b: { B: "!!" } } })], {}, /line 1: .*not base64/],
    [[item(1)], { itemCount: 2 }, /holds 1 items, but the files manifest says 2/],
    [[item(1)], { md5Checksum: "AAAA" }, /but the files manifest says AAAA: it is not the file/],
  ];
  for (const [lines, over, message] of cases) {
    const { body, file } = await dataFile(lines, over);
    await assert.rejects(pagesOf(exportPages(body, file, 10)), (error: Error) => {
      assert.ok(error instanceof ExportDataError, String(error));
      assert.match(error.message, /^export data file p\/AWSDynamoDB\/x\/data\/f\.json\.gz: /);
      assert.match(error.message, message);
      return true;
    });
  }
});

Deno.test("an item without the table's key is refused: the file is not the table's", async () => {
  const key = {
    table: "firespring-backdoor-actions-dev",
    attributes: [{ name: "id", type: "S" as const }],
  };
  const cases: [string, RegExp][] = [
    [JSON.stringify({ Item: {} }), /line 2: the item has no key attribute id of type S \(none\)/],
    [
      JSON.stringify({ Item: { id: { N: "1" } } }),
      /line 2: the item has no key attribute id of type S \(one of type N\): not an item of firespring-backdoor-actions-dev$/,
    ],
  ];
  cases.push([
    JSON.stringify({ Item: { id: null } }),
    /line 2: the item has no key attribute id of type S \(one that is no attribute value\)/,
  ]);
  for (const [line, message] of cases) {
    const { body, file } = await dataFile([item(1), line]);
    await assert.rejects(pagesOf(exportPages(body, file, 10, 0, { key })), (error: Error) => {
      assert.ok(error instanceof ExportDataError && !(error instanceof ExportReadError));
      assert.match(error.message, /^export data file p\/AWSDynamoDB\/x\/data\/f\.json\.gz: /);
      assert.match(error.message, message);
      return true;
    });
  }
  const { body, file } = await dataFile([item(1), item(2)]);
  const pages = await pagesOf(exportPages(body, file, 10, 0, { key }));
  assert.equal(pages.flatMap((p) => p.items).length, 2, "items with the key pass");
});

Deno.test("bytes that are not gzip are refused as unreadable", async () => {
  const file: ExportDataFile = { key: "k.json.gz", itemCount: 0, md5Checksum: "", etag: "" };
  const body = new Blob(["plain text\n"]).stream();
  await assert.rejects(
    pagesOf(exportPages(body, file, 10)),
    /export data file k\.json\.gz: unreadable after line 0/,
  );
});

Deno.test("a file of several gzip members joined is refused, saying so", async () => {
  // RFC 1952: a gzip file is "a series of members"; AWS promises DynamoDB's export files
  // only as "compressed", and no export has been seen to join members. If one did, its
  // job fails naming the cause, not "failed to write whole buffer".
  const bytes = new Uint8Array([...await gzip(`${item(1)}\n`), ...await gzip(`${item(2)}\n`)]);
  const file = fileOf(bytes, "k.json.gz");
  await assert.rejects(
    pagesOf(exportPages(new Blob([bytes]).stream(), file, 10)),
    (error: Error) => {
      assert.ok(error instanceof ExportDataError, String(error));
      assert.match(
        error.message,
        /^export data file k\.json\.gz: unreadable after line \d: it has bytes after its first gzip stream \(several gzip members joined/,
      );
      return true;
    },
  );
});

Deno.test("a file longer than its manifest says hands on no page past the manifest's count", async () => {
  const { body, file } = await dataFile([1, 2, 3, 4, 5].map(item), { itemCount: 2 });
  const handed: ExportPage[] = [];
  await assert.rejects(
    (async () => {
      for await (const page of exportPages(body, file, 2)) handed.push(page);
    })(),
    /f\.json\.gz: holds more than the 2 items the files manifest says \(line 3\)/,
  );
  assert.deepEqual(handed.map((p) => p.nextLine), [2], "only the manifest's two lines");
});

Deno.test("an empty partition's file, no bytes at all, holds no item", async () => {
  const empty: ExportDataFile = {
    key: "p/AWSDynamoDB/x/data/empty.json.gz",
    itemCount: 0,
    md5Checksum: createHash("md5").update(new Uint8Array()).digest("base64"),
    etag: "",
  };
  const pages = await pagesOf(exportPages(new Blob([]).stream(), empty, 10));
  assert.deepEqual(pages, [{ items: [], nextLine: 0, done: true }]);
  await assert.rejects(
    pagesOf(exportPages(new Blob([]).stream(), { ...empty, itemCount: 3 }, 10)),
    /empty\.json\.gz: holds 0 items, but the files manifest says 3/,
  );
});

Deno.test("a read that fails before its first byte is an unreadable file, not an empty one", async () => {
  const file: ExportDataFile = { key: "k.json.gz", itemCount: 0, md5Checksum: "", etag: "" };
  const broken = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.error(
        Object.assign(new Error("connection reset by peer"), { code: "ECONNRESET" }),
      );
    },
  });
  await assert.rejects(
    pagesOf(exportPages(broken, file, 10)),
    (error: Error) =>
      error instanceof ExportReadError &&
      /k\.json\.gz: unreadable after line 0: connection reset by peer/.test(error.message) &&
      error.code === "ECONNRESET",
  );
});

Deno.test("a read that waits past its quiet time is a broken read, and its bytes' stream is cancelled", async () => {
  const file: ExportDataFile = { key: "k.json.gz", itemCount: 1, md5Checksum: "", etag: "" };
  let cancelled = false;
  const quiet = new ReadableStream<Uint8Array>({
    pull: () => new Promise(() => {}), // S3 sends nothing more
    cancel: () => void (cancelled = true),
  });
  await assert.rejects(
    pagesOf(exportPages(quiet, file, 10, 0, { quietMs: 20 })),
    (error: Error) =>
      error instanceof ExportReadError && error.code === "ETIMEDOUT" &&
      /k\.json\.gz: unreadable after line 0: no byte from S3 for 0\.02 s/.test(error.message),
  );
  assert.ok(cancelled);
});

Deno.test("bytes that are not gzip are not the export's file: no read again mends them", async () => {
  const file: ExportDataFile = { key: "k.json.gz", itemCount: 1, md5Checksum: "", etag: "" };
  const notGzip = new Blob([new TextEncoder().encode("this is not gzip at all\n")]).stream();
  await assert.rejects(
    pagesOf(exportPages(notGzip, file, 10)),
    (error: Error) =>
      error instanceof ExportDataError && !(error instanceof ExportReadError) &&
      /k\.json\.gz: unreadable after line 0: .* \(after 24 bytes of it\)$/.test(error.message),
  );
});

Deno.test("a page of big items ends at its text's bound, before its item count", async () => {
  // Items of a third of the bound each (and their JSON): the third takes a page past it.
  const big = (i: number) =>
    JSON.stringify({ Item: { id: { S: `k${i}` }, blob: { S: "x".repeat(100) } } });
  const { body, file } = await dataFile([1, 2, 3, 4, 5].map(big));
  const pages = await pagesOf(
    exportPages(body, file, 1000, 0, { pageChars: 300, lineChars: 1000 }),
  );
  assert.deepEqual(pages.map((p) => [p.items.length, p.nextLine, p.done]), [
    [3, 3, false],
    [2, 5, true],
  ]);
});

Deno.test("a line that runs on without end is refused, naming the file and the line", async () => {
  const endless = "x".repeat(1001);
  const bytes = await gzip(`${item(1)}\n${endless}`);
  const file = fileOf(bytes);
  await assert.rejects(
    pagesOf(
      exportPages(new Blob([new Uint8Array(bytes)]).stream(), file, 10, 0, {
        pageChars: 300,
        lineChars: 1000,
      }),
    ),
    (error: Error) =>
      error instanceof ExportDataError &&
      error.message ===
        "export data file p/AWSDynamoDB/x/data/f.json.gz: line 2 runs past 1000 characters without an end: it is no item of an export",
  );
});

Deno.test("a line too long is refused however the file's bytes are cut into reads", async () => {
  const long = JSON.stringify({ Item: { id: { S: "k" }, blob: { S: "x".repeat(2000) } } });
  const bytes = await gzip(`${item(1)}\n${long}\n${item(3)}\n`);
  const file = { ...fileOf(bytes), itemCount: 3 };
  for (const readSize of [bytes.length, 7]) {
    // One read of the whole file (the long line ends inside it), or 7 bytes at a time.
    const reads = Array.from(
      { length: Math.ceil(bytes.length / readSize) },
      (_, i) => bytes.slice(i * readSize, (i + 1) * readSize),
    );
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = reads.shift();
        if (next) controller.enqueue(next);
        else controller.close();
      },
    });
    await assert.rejects(
      pagesOf(exportPages(body, file, 10, 0, { pageChars: 100_000, lineChars: 1000 })),
      (error: Error) =>
        error instanceof ExportDataError &&
        /: line 2 runs past 1000 characters/.test(error.message),
      `reads of ${readSize} bytes`,
    );
  }
});
