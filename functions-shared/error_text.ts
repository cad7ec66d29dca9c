/**
 * One line for an error in a function's log: its name, its code (a Postgres SQLSTATE, a
 * Node error code), its message, and what Postgres adds beside the message (the detail,
 * which names the key a unique violation collides on, the hint, which often says the
 * fix, and the table, column and constraint). A multi-line stack is no log line to read at
 * 3 am, and an AggregateError (a connection tried at several addresses) has an empty
 * message and its causes in `errors`.
 *
 * @module
 */

/** The fields of an error that {@link describeError} reads, where present. */
interface ErrorFields {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  detail?: unknown;
  hint?: unknown;
  table_name?: unknown;
  column_name?: unknown;
  constraint_name?: unknown;
  errors?: unknown;
}

/** `name (code): message; detail: ...; hint: ...; table ..., column ..., constraint ...`. */
export function describeError(error: unknown): string {
  if (typeof error !== "object" || error === null) return String(error);
  const e = error as ErrorFields;
  const text = (value: unknown) => typeof value === "string" && value !== "" ? value : undefined;
  const inner = Array.isArray(e.errors)
    ? e.errors.map((cause) => describeError(cause)).join("; ")
    : undefined;
  const message = text(e.message) ?? inner ?? "(no message)";
  let line = `${text(e.name) ?? "Error"}${text(e.code) ? ` (${e.code})` : ""}: ${message}`;
  line += besideTheMessage(error);
  if (inner && text(e.message)) line += ` [${inner}]`;
  // A fault of the code itself (a TypeError, say) says where, by its first frame: the one
  // line keeps the place a stack would have shown.
  if (
    error instanceof TypeError || error instanceof RangeError || error instanceof ReferenceError
  ) {
    const stack = (error as Error).stack;
    const frame = typeof stack === "string" ? /\n\s*at (.+)/.exec(stack)?.[1] : undefined;
    if (frame) line += ` (at ${frame.trim()})`;
  }
  return line.replace(/\s*\n\s*/g, " ");
}

/**
 * The SQLSTATEs whose detail is the whole row ("Failing row contains (...)"): a not-null
 * and a check violation. Their detail never goes into a line: every column of the row
 * (a lead's email and phone) would land in the function's log, which every member of the
 * project reads; the message and {@link errorIdentifiers} name the column or constraint.
 */
const ROW_IN_DETAIL = new Set(["23502", "23514"]);

/**
 * What Postgres says beside an error's message: `; detail: ...` (the key a unique
 * violation collides on; never the row a not-null or check violation lists,
 * {@link ROW_IN_DETAIL}), `; hint: ...` (often the fix), then {@link errorIdentifiers}.
 * "" when it says nothing more.
 */
export function besideTheMessage(error: unknown): string {
  const { detail, hint, code } = (error ?? {}) as ErrorFields;
  const shown = typeof detail === "string" && detail && !ROW_IN_DETAIL.has(String(code));
  return (shown ? `; detail: ${detail}` : "") +
    (typeof hint === "string" && hint ? `; hint: ${hint}` : "") + errorIdentifiers(error);
}

/**
 * The identifiers Postgres names beside an error's message (table, column, constraint):
 * names, never values, so they may go where the values may not (an answer the Lambda
 * logs). "" when there are none.
 */
export function errorIdentifiers(error: unknown): string {
  const e = (error ?? {}) as ErrorFields;
  const parts = [
    typeof e.table_name === "string" && e.table_name && `table ${e.table_name}`,
    typeof e.column_name === "string" && e.column_name && `column ${e.column_name}`,
    typeof e.constraint_name === "string" && e.constraint_name &&
    `constraint ${e.constraint_name}`,
  ].filter(Boolean);
  return parts.length > 0 ? ` (${parts.join(", ")})` : "";
}

/**
 * An error's message without the text it quotes, for an answer: V8's JSON.parse quotes
 * the body (`Unexpected token 's', "ssn-123-45-6789" is not valid JSON`) and Postgres
 * quotes values (`invalid input syntax for type numeric: "abc"`), and answers land where
 * the function's own log does not reach: the Lambda's CloudWatch logs, pg_net's
 * `net._http_response`, which every database role may read. The function's own log keeps
 * the whole error ({@link describeError}).
 */
export function withoutQuotes(message: string): string {
  // Everything from the first quote on: the quoted text may hold quotes of its own,
  // unescaped (V8 quotes the body as it is), so no pairing of quotes finds its end.
  // V8 names the character it stopped at first, in single quotes: the body's too.
  return message
    .replace(/^Unexpected token '[\s\S]{1,2}', "/, 'Unexpected token "')
    .replace(/".*$/s, "(quoted text)");
}
