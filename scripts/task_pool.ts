/**
 * A pool of tasks run a few at a time (run_tests.ts runs the end-to-end files that may
 * share the stack with it).
 *
 * @module
 */

/**
 * Runs `tasks` at most `limit` (at least 1) at a time, in the order given, and resolves
 * when all are done, or rejects with the first task's failure once the tasks started are
 * done (none starts after it). Each of `joining`, once settled, adds a place to the pool
 * for the tasks not yet started (the places a file held while it waited come back); the
 * pool does not wait for them to settle. Used for the end-to-end files that may share
 * the stack.
 */
export function pool(
  limit: number,
  tasks: (() => Promise<unknown>)[],
  joining: Promise<unknown>[] = [],
): Promise<void> {
  let next = 0;
  let active = 0;
  let failure: { error: unknown } | undefined;
  const all = Promise.withResolvers<void>();
  const worker = async () => {
    active++;
    try {
      while (next < tasks.length && !failure) await tasks[next++]();
    } catch (error) {
      failure ??= { error };
    } finally {
      active--;
      if ((next >= tasks.length || failure) && active === 0) {
        if (failure) all.reject(failure.error);
        else all.resolve();
      }
    }
  };
  if (tasks.length === 0) all.resolve();
  for (let i = 0; i < Math.min(Math.max(1, limit), tasks.length); i++) worker();
  for (const settled of joining) settled.finally(worker).catch(() => {});
  return all.promise;
}
