/**
 * Values written into a statement's text, for the one place where a round trip counts:
 * through a transaction pooler the driver must not prepare statements
 * (sync_db.ts, `poolOptions`), and postgres.js then sends a statement that has
 * parameters in two round trips (Parse and Describe first, to learn the parameters'
 * types, then Bind and Execute). A statement without parameters goes in one. Measured
 * through the local PgBouncer, a batch of 10 rows: 1.5–1.8 ms with a parameter, 1.1 ms
 * with the value in the text.
 *
 * The value is dollar-quoted (https://www.postgresql.org/docs/15/sql-syntax-lexical.html,
 * "Dollar-Quoted String Constants"): nothing inside is an escape, whatever
 * `standard_conforming_strings` says, and the tag is chosen so that the text cannot
 * end the constant early.
 *
 * @module
 */

/**
 * `text` as a dollar-quoted string constant, e.g. `$q$it's$q$`. Throws on U+0000, which
 * no statement text may hold (JSON text never does: JSON.stringify escapes it).
 */
export function dollarQuoted(text: string): string {
  if (text.includes("\u0000")) {
    throw new TypeError("a statement's text cannot hold U+0000 (NUL)");
  }
  let tag = "q";
  // The first `$tag$` after the opening one must be the closing one.
  while ((text + `$${tag}$`).indexOf(`$${tag}$`) !== text.length) tag += "q";
  return `$${tag}$${text}$${tag}$`;
}
