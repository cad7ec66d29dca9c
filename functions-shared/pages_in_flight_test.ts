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

/** A page of visitors: 1,000 items asked, as a 1 MB page holds 520, 1 ms each mapped. */
const visitorsPage = (limit: number, items = Math.min(limit, 520)) => ({
  table: VISITORS,
  limit,
  pageSize: 1_000,
  mapped: { items, ms: items },
});

/** An isolate that read one whole page of visitors: 520 items mapped in 520 ms, 600 in all. */
function afterAVisitorsPage() {
  const pages = new PagesInFlight();
  pages.begin(700);
  pages.end(1_300, visitorsPage(1_000));
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

Deno.test("pages sized to the room one after another stay the same size: their cost is not counted twice", () => {
  // Each sized page costs as a whole one does for its items (its mapping and 600 / 520 of
  // it in all), and the room is the same at each request's arrival.
  const pages = afterAVisitorsPage();
  let cpu = 1_300;
  const sizes = [];
  for (let i = 0; i < 6; i++) {
    const items = pages.pageItems(VISITORS, 1_000, 500);
    sizes.push(items);
    pages.begin(cpu);
    cpu += items * 600 / 520;
    pages.end(cpu, visitorsPage(items));
  }
  assert.deepEqual(sizes, [433, 433, 433, 433, 433, 433]);
  assert.equal(pages.perPageMs().toFixed(1), "600.0", "a whole page's cost kept");
});

Deno.test("no page smaller than a whole one while another is in flight, nor in less than the smallest room", () => {
  const pages = afterAVisitorsPage();
  pages.begin(1_300);
  assert.equal(pages.pageItems(VISITORS, 1_000, 500), 0, "the run waits for the page in flight");
  pages.end(1_900);
  assert.equal(pages.pageItems(VISITORS, 1_000, SMALLEST_PAGE_ROOM_MS - 1), 0);
  assert.ok(pages.pageItems(VISITORS, 1_000, SMALLEST_PAGE_ROOM_MS) > 0);
});

Deno.test("no page when not one item fits", () => {
  const pages = new PagesInFlight();
  pages.begin(0);
  pages.end(600, { table: VISITORS, limit: 1, pageSize: 1, mapped: { items: 1, ms: 600 } });
  assert.equal(pages.pageItems(VISITORS, 1, 100), 0);
});

Deno.test("a table the isolate has not mapped gets a probe page, which then measures its items", () => {
  const pages = afterAVisitorsPage();
  assert.equal(pages.itemMs(ACTIONS), undefined);
  assert.equal(pages.pageItems(ACTIONS, 1_000, 300), PROBE_PAGE_ITEMS);
  pages.begin(1_300);
  const probe = { items: PROBE_PAGE_ITEMS, ms: 5 };
  pages.end(1_305, { table: ACTIONS, limit: PROBE_PAGE_ITEMS, pageSize: 1_000, mapped: probe });
  // An actions item: 0.1 ms mapped, against the visitors' 1 ms.
  assert.ok(pages.itemMs(ACTIONS)! < pages.itemMs(VISITORS)! / 5);
  assert.equal(pages.pageItems(ACTIONS, 1_000, 300), 1_000, "the room holds a whole page of them");
});

Deno.test("a probe holds no more of the page size than the room does at the cost of a page", () => {
  const pages = afterAVisitorsPage(); // 600 ms a page
  // 20 items a page: a room of 300 ms holds 10 of them.
  assert.equal(pages.pageItems(ACTIONS, 20, 300), 10);
  assert.equal(pages.pageItems(ACTIONS, 1_000, 60), PROBE_PAGE_ITEMS, "1,000 × 60 / 600 is 100");
  assert.equal(pages.pageItems(ACTIONS, 1_000, 24), 0, "below the smallest room");
});

Deno.test("a step the meter saw cost nothing does not make a table's items free", () => {
  const pages = afterAVisitorsPage();
  pages.begin(1_300);
  pages.end(1_300, { table: ACTIONS, limit: 1_000, pageSize: 1_000, mapped: { items: 10, ms: 0 } });
  assert.equal(pages.itemMs(ACTIONS), undefined, "still unmeasured: a probe next");
});

Deno.test("a page sized to the room counts as the pages' worth of CPU it cost: the cost of a page stays", () => {
  const pages = afterAVisitorsPage();
  pages.begin(1_300);
  pages.end(1_600, visitorsPage(260)); // 260 items, 300 ms: half a page
  assert.equal(pages.perPageMs(), 600, "900 ms over a page and a half");
});

Deno.test("a whole page of a table dearer than the isolate's cost of a page must fit as such", () => {
  // Three pages of actions at 50 ms, then one of visitors at 600: 187.5 ms a page on
  // average, but a whole page of visitors costs 600.
  const pages = new PagesInFlight();
  let cpu = 0;
  for (
    const [table, items, ms] of [[ACTIONS, 1_000, 50], [ACTIONS, 1_000, 50], [ACTIONS, 1_000, 50], [
      VISITORS,
      520,
      600,
    ]] as const
  ) {
    pages.begin(cpu);
    cpu += ms;
    pages.end(cpu, { table, limit: 1_000, pageSize: 1_000, mapped: { items, ms } });
  }
  assert.equal(pages.perPageMs(), 187.5);
  assert.equal(pages.wholePageMs(VISITORS), 600);
  assert.equal(pages.wholePageMs(ACTIONS), 187.5);
  assert.equal(pages.pageItems(ACTIONS, 1_000, 400), 1_000);
  assert.equal(
    pages.pageItems(VISITORS, 1_000, 400),
    Math.floor(400 / (600 / 520)),
    "346, not 1,000",
  );
});
