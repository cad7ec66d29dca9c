/**
 * Waiting for a condition in end-to-end tests, without the stack (tests/stack_clients.ts
 * re-exports it beside the stack's clients; the files that need no stack import it here).
 *
 * @module
 */

/** Polls `read` every 250 ms until it returns a value other than undefined. */
export async function eventually<T>(
  what: string,
  read: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await read();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
}
