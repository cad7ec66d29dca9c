import assert from "node:assert/strict";
import { IsolatePages } from "./isolate_pages.ts";

Deno.test("IsolatePages sums every request's estimate, read when asked", () => {
  const pages = new IsolatePages();
  assert.equal(pages.expectedMs(), 0);
  let mine = 0;
  const leaveMine = pages.add(() => mine);
  const leaveOther = pages.add(() => 300);
  assert.equal(pages.expectedMs(), 300);
  mine = 2 * 120;
  assert.equal(pages.expectedMs(), 540, "a request's pages are followed as they change");
  assert.equal(pages.requests, 2);
  leaveOther();
  assert.equal(pages.expectedMs(), 240);
  leaveMine();
  leaveMine();
  assert.equal(pages.expectedMs(), 0);
  assert.equal(pages.requests, 0);
});

Deno.test("IsolatePages keeps two requests with the same estimate apart", () => {
  const pages = new IsolatePages();
  const same = () => 100;
  const leave = pages.add(same);
  pages.add(same);
  assert.equal(pages.expectedMs(), 200);
  leave();
  assert.equal(pages.expectedMs(), 100);
});

Deno.test("IsolatePages wakes every request waiting for a page to end, once", async () => {
  const pages = new IsolatePages();
  const woken: string[] = [];
  const a = pages.oneEnded().then(() => woken.push("a"));
  const b = pages.oneEnded().then(() => woken.push("b"));
  await Promise.resolve();
  assert.deepEqual(woken, []);
  pages.pageEnded();
  await Promise.all([a, b]);
  assert.deepEqual(woken, ["a", "b"]);
  let late = false;
  pages.oneEnded().then(() => (late = true));
  await Promise.resolve();
  assert.equal(late, false, "a wait begun after the end waits for the next one");
});

Deno.test("reserveWhenRoom lets one waiter take the room one page's end frees, the other waits on", async () => {
  const pages = new IsolatePages();
  let inFlight = 3; // pages in flight in the isolate, one page's room under the ceiling each
  const ceiling = 3;
  const taken: string[] = [];
  const waiter = (name: string) =>
    pages.reserveWhenRoom(
      () => inFlight < ceiling,
      () => inFlight > 0,
      () => false,
      () => {
        inFlight++;
        taken.push(name);
      },
    );
  const a = waiter("a");
  const b = waiter("b");
  await Promise.resolve();
  assert.deepEqual(taken, [], "no room: both wait");
  inFlight--;
  pages.pageEnded();
  assert.equal(await a, true);
  await new Promise((resolve) => setTimeout(resolve, 1));
  assert.deepEqual(taken, ["a"], "the first woken took the room; the second waits again");
  assert.equal(inFlight, 3);
  inFlight--;
  pages.pageEnded();
  assert.equal(await b, true);
  assert.deepEqual(taken, ["a", "b"]);
});

Deno.test("reserveWhenRoom gives up, reserving nothing, when stopped or when no room can come", async () => {
  const pages = new IsolatePages();
  const never = () => {
    throw new Error("reserved");
  };
  let stopped = false;
  const waiting = pages.reserveWhenRoom(() => false, () => true, () => stopped, never);
  stopped = true;
  pages.pageEnded();
  assert.equal(await waiting, false);
  assert.equal(await pages.reserveWhenRoom(() => false, () => false, () => false, never), false);
  assert.equal(await pages.reserveWhenRoom(() => true, () => true, () => true, never), false);
});
