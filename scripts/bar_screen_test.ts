import assert from "node:assert/strict";
import { BarScreen } from "./bar_screen.ts";

Deno.test("on a terminal, a log line clears the bars and is printed where they were", () => {
  let out = "";
  const screen = new BarScreen(true, (text) => (out += text));
  screen.bars(["a 10%", "b 20%"]);
  screen.bars(["a 30%", "b 40%"]);
  screen.log("left file 3 of actions: its connection died");
  screen.bars(["a 50%", "b 60%"]);
  assert.equal(
    out,
    "\x1b[2Ka 10%\n\x1b[2Kb 20%\n" +
      "\x1b[2A\x1b[2Ka 30%\n\x1b[2Kb 40%\n" +
      "\x1b[2A\x1b[J" + "left file 3 of actions: its connection died\n" +
      "\x1b[2Ka 50%\n\x1b[2Kb 60%\n",
  );
});

Deno.test("elsewhere, bars and log lines are plain lines, in order", () => {
  let out = "";
  const screen = new BarScreen(false, (text) => (out += text));
  screen.bars(["a 10%"]);
  screen.log("trying again in 2000 ms");
  screen.bars(["a 20%"]);
  assert.equal(out, "a 10%\ntrying again in 2000 ms\na 20%\n");
});
