import assert from "node:assert/strict";
import { isCalendarDay, isLeapYear, isoOfEpochMs } from "./civil_time.ts";

const FIRST_MS = -62135596800000; // 0001-01-01T00:00:00.000Z
const LAST_MS = 253402300799999; // 9999-12-31T23:59:59.999Z

Deno.test("isoOfEpochMs writes what Date#toISOString writes, from year 1 to 9999", () => {
  const edges = [
    FIRST_MS,
    LAST_MS,
    0,
    -1,
    1,
    951782400000, // 2000-02-29
    -2203891200000, // 1900-03-01
    -62104060800000, // 0002-01-01
    1700000000123,
    -86400001,
  ];
  // A seeded walk over the whole range, so a failure can be run again.
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const walk = Array.from(
    { length: 20_000 },
    () => Math.floor(FIRST_MS + random() * (LAST_MS - FIRST_MS)),
  );
  for (const ms of [...edges, ...walk]) {
    assert.equal(`${isoOfEpochMs(ms)}Z`, new Date(ms).toISOString(), String(ms));
  }
});

Deno.test("isCalendarDay knows the months' lengths and the Gregorian leap years", () => {
  assert.ok(isLeapYear(2000) && isLeapYear(2024) && isLeapYear(4));
  assert.ok(!isLeapYear(1900) && !isLeapYear(2023) && !isLeapYear(100));
  assert.ok(isCalendarDay(2024, 2, 29));
  assert.ok(!isCalendarDay(2023, 2, 29));
  assert.ok(!isCalendarDay(1900, 2, 29));
  assert.ok(isCalendarDay(2000, 2, 29));
  assert.ok(isCalendarDay(1, 1, 1));
  assert.ok(isCalendarDay(9999, 12, 31));
  assert.ok(!isCalendarDay(2024, 4, 31));
  assert.ok(!isCalendarDay(2024, 13, 1));
  assert.ok(!isCalendarDay(2024, 0, 1));
  assert.ok(!isCalendarDay(2024, 1, 0));
  assert.ok(!isCalendarDay(0, 1, 1), "no year 0");
  // The same verdict as Date for every day of four years, a century's leap rule among them.
  for (const year of [1899, 1900, 2000, 2023]) {
    for (let month = 1; month <= 12; month++) {
      for (let day = 1; day <= 31; day++) {
        const date = new Date(Date.UTC(year, month - 1, day));
        const real = date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
        assert.equal(isCalendarDay(year, month, day), real, `${year}-${month}-${day}`);
      }
    }
  }
});
