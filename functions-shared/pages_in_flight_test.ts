import assert from "node:assert/strict";
import {
  FIRST_PAGE_CPU_MS,
  PagesInFlight,
  PROBE_PAGE_ITEMS,
  SMALLEST_PAGE_ROOM_MS,
} from "./pages_in_flight.ts";

const VISITORS = "firespring-backdoor-visitors-dev";
const ACTIONS = "firespring-backdoor-actions-dev";

Deno.test("the pages in flight: a first guess, then the CPU per page measured", () => {
  const pages = new PagesInFlight();
  assert.equal(pages.expectedMs(), 0);
  pages.begin(100);
  pages.begin(100);
  assert.equal(pages.count, 2);
  assert.equal(pages.expectedMs(), 2 * FIRST_PAGE_CPU_MS);
  pages.end(160);
  pages.end(220);
  // 120 ms for 2 pages from the first page's start: 60 ms a page.
  assert.equal(pages.perPageMs(), 60);
  pages.begin(220);
  assert.equal(pages.expectedMs(), 60);
  pages.end(400);
  pages.end(400); // an end too many never goes below zero
  assert.equal(pages.count, 0);
});

/** An isolate that read one whole page of visitors: 520 items mapped in 520 ms. */
function afterAVisitorsPage() {
  const pages = new PagesInFlight();
  pages.begin(700);
  pages.mapped(VISITORS, 520, 520);
  pages.end(1_300); // 600 ms the page, the mapping 520 of it
  return pages;
}

Deno.test("a whole page when it fits in the room", () => {
  const pages = afterAVisitorsPage();
  assert.equal(pages.perPageMs(), 600);
  assert.equal(pages.pageItems(VISITORS, 1_000, 601), 1_000);
});

Deno.test("a page that does not fit whole reads the items that fit, at what an item cost the isolate", () => {
  const pages = afterAVisitorsPage();
  // 1 ms an item mapped, times 600 / 520 for the page's work the mapping does not show.
  assert.equal(pages.itemMs(VISITORS)!.toFixed(4), (600 / 520).toFixed(4));
  assert.equal(pages.pageItems(VISITORS, 1_000, 500), Math.floor(500 / (600 / 520)));
  assert.equal(pages.pageItems(VISITORS, 1_000, 500), 433);
});

Deno.test("no page smaller than a whole one while another is in flight, nor in less than the smallest room", () => {
  const pages = afterAVisitorsPage();
  pages.begin(1_300);
  assert.equal(pages.pageItems(VISITORS, 1_000, 500), 0, "the run waits for the page in flight");
  pages.end(1_900);
  assert.equal(pages.pageItems(VISITORS, 1_000, SMALLEST_PAGE_ROOM_MS - 1), 0);
  assert.ok(pages.pageItems(VISITORS, 1_000, SMALLEST_PAGE_ROOM_MS) > 0);
});

Deno.test("a table the isolate has not mapped gets a probe page, which then measures its items", () => {
  const pages = afterAVisitorsPage();
  assert.equal(pages.itemMs(ACTIONS), undefined);
  assert.equal(pages.pageItems(ACTIONS, 1_000, 300), PROBE_PAGE_ITEMS);
  assert.equal(pages.pageItems(ACTIONS, 20, 300), 20, "never more than the page size");
  pages.begin(1_300);
  pages.mapped(ACTIONS, PROBE_PAGE_ITEMS, 5);
  pages.end(1_306, PROBE_PAGE_ITEMS / 1_000);
  // An actions item: 0.1 ms mapped, against the visitors' 1 ms.
  assert.ok(pages.itemMs(ACTIONS)! < pages.itemMs(VISITORS)! / 5);
  assert.equal(pages.pageItems(ACTIONS, 1_000, 300), 1_000, "the room holds a whole page of them");
});

Deno.test("a page sized to the room counts as its share of a page: whole pages do not look cheaper", () => {
  const pages = afterAVisitorsPage();
  pages.begin(1_300);
  pages.mapped(VISITORS, 260, 260);
  pages.end(1_600, 0.5); // half a page, for half the CPU
  assert.equal(pages.perPageMs(), 600, "900 ms over a page and a half");
});
