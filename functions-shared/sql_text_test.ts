import assert from "node:assert/strict";
import { dollarQuoted } from "./sql_text.ts";

Deno.test("text is dollar-quoted with a tag it cannot close early", () => {
  assert.equal(dollarQuoted(`{"a": "it's"}`), `$q${"$"}{"a": "it's"}$q$`);
  assert.equal(dollarQuoted("a $q$ b"), "$qq$a $q$ b$qq$");
  // Ending in "$q" would meet the closing "$q$" one character early.
  assert.equal(dollarQuoted("price $q"), "$qq$price $q$qq$");
  assert.equal(dollarQuoted(""), "$q$$q$");
  assert.equal(dollarQuoted("back\\slash"), "$q$back\\slash$q$");
});

Deno.test("U+0000 is refused: no statement's text may hold it", () => {
  assert.throws(() => dollarQuoted("a\u0000b"), /U\+0000/);
});
