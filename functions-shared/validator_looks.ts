/**
 * The validator's further looks at keys that differ (docs/sync-semantics.md,
 * "Verification"): after a settle pause, fresh point reads of the source, compared with
 * the target again, and again as the stream catches up, so that keys merely in flight
 * are not reported. Each look is checkpointed in the run's row, so a request whose budget
 * is spent hands on within it.
 *
 * @module
 */

import type { ValidatorDeps } from "./validator_deps.ts";
import type { TableSpec } from "./table_registry.ts";
import { compareLooked, type Divergence, findingsOf } from "./validator_compare.ts";
import { withoutKeysMovedOn } from "./validator_moved_on.ts";
import { type RowKey, rowKeyText, unmappableRowKey } from "./validator_plan.ts";
import { addToChunk, emptyChunk, noteRead, stage } from "./validator_look_chunk.ts";
import { PartitionTooLarge } from "./point_reads.ts";
import { realPacing } from "./scan_pacing.ts";
import { leaseRenewal, lookPace, readAgain, ReadAgainThrottled } from "./validator_look_reads.ts";

/** How many times a divergent key is looked at again before it is reported. */
export const LOOKS = 3;

/**
 * Keys of a look read again and staged together: each chunk is one staging, which reads
 * and rewrites the run's unmappable list (validator_source.ts, `stage`), and one
 * checkpoint of the look.
 */
export const RECHECK_CHUNK_KEYS = 50;

/** A chunk is staged once its rows' JSON reaches this size (a few keys of 400 KB items). */
export const RECHECK_CHUNK_BYTES = 2 * 1024 * 1024;

/**
 * One more look at the run's divergent keys, after a settle pause, with fresh point
 * reads of the source, compared (`sync.compare_checksum` restricted to those keys), and,
 * in the last look, compared again after each pause of {@link CATCH_UP_SHARES} while some
 * differ; keeps only the keys that differ at every compare. The look's keys are fixed when it starts
 * (`recheck_keys`), and read again in chunks of {@link RECHECK_CHUNK_KEYS}, each staged
 * in the transaction that moves the look's checkpoint (`recheck_read`): a request whose
 * budget is spent between keys returns "budget" and the next goes on from there, so a
 * look too big for one request (200 keys of 400 KB, a collapsed key's long partition)
 * still ends. Every request reads at least one key. The run's lists, its look count and
 * its phase (another look, or "report" after {@link LOOKS} or when none differs) move in
 * one transaction held by `worker`. More than `maxKeys` divergent keys are not looked at
 * again: the run moves on to its report. Returns the phase after it, "budget", or
 * "throttled" (a key kept failing to read: what was read before it is kept, and the run
 * waits for the heartbeat).
 */
export async function recheckLook(
  deps: ValidatorDeps,
  spec: TableSpec,
  run: number,
  worker: string,
  maxKeys: number,
  overBudget: () => boolean = () => false,
): Promise<string> {
  const [cursor] = await deps.sql<
    { recheck_keys: RowKey[] | null; recheck_read: number; looks: number }[]
  >`select recheck_keys, recheck_read, looks from public.sync_checksums where id = ${run}`;
  // A look under way goes on from its checkpoint; otherwise one starts, at key 0.
  const looked = cursor?.recheck_keys ?? await startLook(deps, spec, run, worker, maxKeys);
  if (looked === "report") return "report";
  let read = cursor?.recheck_keys ? cursor.recheck_read : 0;
  let readThisRequest = 0;
  const renew = async () => {
    await deps.sql`select sync.renew_validation(${run}, ${worker})`;
  };
  const pace = lookPace(deps, renew);
  // Renewed every RENEW_EVERY_MS between checkpoints, without counting as progress.
  const lease = leaseRenewal(renew);
  while (read < looked.length) {
    const chunk = emptyChunk();
    let stopped: false | "budget" | "throttled" = false;
    while (
      read + chunk.keys.length < looked.length && chunk.keys.length < RECHECK_CHUNK_KEYS &&
      chunk.bytes < RECHECK_CHUNK_BYTES
    ) {
      if (readThisRequest > 0 && overBudget()) {
        stopped = "budget";
        break;
      }
      await lease.due();
      const key = looked[read + chunk.keys.length];
      try {
        const { items, readAt, readBefore } = await readAgain(deps, spec, run, key);
        noteRead(chunk, readAt, readBefore);
        addToChunk(deps, spec, chunk, key, items);
        await pace(items);
      } catch (error) {
        if (error instanceof PartitionTooLarge) {
          // Not read whole: the looks end, the keys reported as the last look found them.
          deps.log?.(`validation run ${run}: ${error.message}; no more looks`);
          await deps.sql.begin(async (tx) => {
            await tx`select sync.hold_validation(${run}, ${worker})`;
            await tx`update public.sync_checksums
                     set phase = 'report', recheck_keys = null, recheck_read = 0,
                         recheck_read_from = null, recheck_read_before = null
                     where id = ${run}`;
          });
          return "report";
        }
        if (!(error instanceof ReadAgainThrottled)) throw error;
        // The keys read so far are kept (the chunk below); the heartbeat goes on from there.
        deps.log?.(`${error.message}; the look waits for the next heartbeat`);
        stopped = "throttled";
        break;
      }
      readThisRequest++;
    }
    if (chunk.keys.length > 0) {
      await stage(deps, spec, run, chunk, { worker, from: read });
      read += chunk.keys.length;
      lease.renewed();
    }
    if (stopped) return stopped;
  }
  let still = await compareLooked(deps, spec, run, looked);
  // The last look, before its keys are reported, compares the target again as the
  // stream catches up with the reads. A key that changes about as often as the stream
  // lags never shows, right after its read, the version it was read at: the target
  // either has not received that version yet or has already moved past it. A key that
  // matches at any of these compares held, at that moment, the source's state as of its
  // consistent read, so it is not divergent (a lost change would keep it from ever
  // matching that state). Only the keys that still differ are compared again.
  // A request that read keys and whose budget is spent hands on: its reads are
  // checkpointed whole, so the next one compares them again, and waits, rather than
  // report keys in flight. One that read none goes through (compares and pauses cost
  // little CPU), so that every request moves the look.
  const lastLook = (cursor?.looks ?? 0) + 1 >= LOOKS;
  for (const share of lastLook ? CATCH_UP_SHARES : []) {
    if (still.length === 0) break;
    if (readThisRequest > 0 && overBudget()) return "budget";
    // Each pause gets a whole lease (a settle pause may be up to a minute).
    await deps.sql`select sync.renew_validation(${run}, ${worker})`;
    await (deps.pause ?? realPacing.sleep)(share * (deps.settleMs ?? 1_000));
    still = await compareLooked(deps, spec, run, still.map((d) => d.key));
  }
  if (lastLook && still.length > 0) {
    // The bounds of every read of the look, over the requests it spanned (`stage`).
    const [reads] = await deps.sql<
      { recheck_read_from: Date | null; recheck_read_before: Date | null }[]
    >`select recheck_read_from, recheck_read_before from public.sync_checksums
      where id = ${run}`;
    const readFrom = reads?.recheck_read_from;
    const readBefore = reads?.recheck_read_before;
    if (readFrom && readBefore && Number.isFinite(readBefore.getTime())) {
      still = await withoutKeysMovedOn(deps, spec, run, worker, still, {
        readFrom,
        readBefore,
      }, overBudget);
    }
  }
  const pick = (kind: Divergence["kind"]) =>
    JSON.stringify(still.filter((d) => d.kind === kind).map((d) => d.key));
  const [{ phase }] = await deps.sql.begin(async (tx) => {
    await tx`select sync.hold_validation(${run}, ${worker})`;
    return await tx<{ phase: string }[]>`
      update public.sync_checksums
      set missing = ${pick("missing")}::text::jsonb, unexpected = ${
      pick("unexpected")
    }::text::jsonb,
          different = ${pick("different")}::text::jsonb, looks = looks + 1, compared_at = now(),
          recheck_keys = null, recheck_read = 0, recheck_read_from = null,
          recheck_read_before = null,
          phase = case when looks + 1 >= ${LOOKS} or ${still.length} = 0 then 'report' else 'recheck' end
      where id = ${run} returning phase`;
  });
  return phase;
}

/**
 * The pauses before each further compare, in the last look, of keys that still differ
 * with the target, as shares of the settle pause (`settleMs`; at its default of 1 s:
 * 250 ms, then 0.75 and 1.75 s after the first compare). A key changed every second
 * while the stream lags a second matches at one of them whenever it was read: 0.75 s
 * after the read when the read came at least a quarter of a second after its version's
 * change, 1.75 s after it otherwise. The stream's changes reach the target within about
 * a quarter of a second here (the live path's p90, README "Benchmarks"). Waiting costs
 * the request no CPU.
 */
export const CATCH_UP_SHARES = [0.25, 0.5, 1];

/**
 * Starts a look: picks its keys (the divergent ones, then those of unmappable items),
 * waits out the settle pause, and, in one transaction held by `worker`, drops what was
 * staged for them and records them as the look's keys. "report" when there are too many
 * to look at one by one.
 */
async function startLook(
  deps: ValidatorDeps,
  spec: TableSpec,
  run: number,
  worker: string,
  maxKeys: number,
): Promise<RowKey[] | "report"> {
  const found = await findingsOf(deps, run);
  // Too many to look at one by one within a request (validator_deps.ts,
  // MAX_KEYS_LOOKED), or more unmappable items than a request reads (a look reads and
  // rewrites the run's whole unmappable list, `stage`, in the isolate): reported as the
  // compare found them.
  const tooMany = found.total > maxKeys
    ? `${found.total} divergent keys`
    : found.counts.unmappable > found.unmappable.length
    ? `${found.counts.unmappable} unmappable items`
    : undefined;
  if (tooMany) {
    deps.log?.(`validation run ${run}: ${tooMany}, not rechecked one by one`);
    await deps.sql.begin(async (tx) => {
      await tx`select sync.hold_validation(${run}, ${worker})`;
      await tx`update public.sync_checksums set phase = 'report' where id = ${run}`;
    });
    return "report";
  }
  const before = found.keys;
  // The keys of items found unmappable so far: a page of the Scan (eventually consistent)
  // may have shown a version since fixed, so they are read again too (`stage` lists what
  // is still unmappable in their place).
  // Each key once, and none of the divergent ones (a set of their text, not a search
  // per key: a table may hold thousands of unmappable items).
  const known = new Set(before.map((d) => rowKeyText(d.key)));
  const unmappableKeys: RowKey[] = [];
  for (const u of found.unmappable) {
    const key = unmappableRowKey(spec, u);
    if (key === null) continue;
    const text = rowKeyText(key);
    if (known.has(text)) continue;
    known.add(text);
    unmappableKeys.push(key);
  }
  // The divergent keys first: unmappable items (dead-lettered leads, say) must not crowd
  // them out of the keys read again; those past the limit stay listed as the Scan found.
  const looked = [
    ...before.map((d) => d.key),
    ...unmappableKeys.slice(0, Math.max(0, maxKeys - before.length)),
  ];
  // The pause gets a whole lease: renewed before it, without counting as progress.
  await deps.sql`select sync.renew_validation(${run}, ${worker})`;
  await (deps.pause ?? realPacing.sleep)(deps.settleMs ?? 1_000);
  const keys = looked.map((key) => JSON.stringify(key));
  await deps.sql.begin(async (tx) => {
    await tx`select sync.hold_validation(${run}, ${worker})`;
    await tx`delete from sync.checksum_items
             where run_id = ${run} and row_key = any(${keys}::text[]::jsonb[])`;
    await tx`update public.sync_checksums
             set recheck_keys = ${JSON.stringify(looked)}::text::jsonb, recheck_read = 0,
                 recheck_read_from = null, recheck_read_before = null
             where id = ${run}`;
  });
  return looked;
}
