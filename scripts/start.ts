/**
 * `npm start [-- --scale N] [-- --seed N]`: the main job on the embedded stack
 * (docs/interfaces.md, "npm start"). Starts the stack; loads the demo data set into
 * DynamoDB Local (a table's stream on after its load, as on AWS before a backfill);
 * backfills every table through the import-worker; pushes a burst of live changes through
 * DynamoDB Streams -> the Lambda handler -> the webhook (inserts, updates, deletes, an
 * Amplify soft delete, and late and duplicated deliveries); validates every table;
 * prints the migration report. Exits 0 only if every table matches, no source item is
 * unmappable, no dead letter is open and no isolate was killed (each named in the report).
 *
 * The phases overlap where the result is the same (README, "Where the time goes"): the
 * tables load one after another ({@link loadOrder}), and a table's backfill starts as
 * soon as that table is loaded, while the others load; the live burst runs while backfills run (the
 * stream carries every later write and the ordering guard makes the order of arrival
 * irrelevant: docs/sync-semantics.md); a table is validated as soon as its own backfill
 * is done and, for the tables the live phase changes, the streams have drained and the
 * redelivery is answered; validations go as many at a time as a validator isolate
 * takes runs (see below). Waits poll their
 * signal (a job's status, the records noted applied, a run's status), not a quiet spell.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { dataSetArgs, demoItems } from "../demo/demo_data.ts";
import {
  emptyTargets,
  forgetOldStreams,
  loadLine,
  loadTable,
} from "../demo/load_report_data_set.ts";
import { VALIDATOR_SETTINGS } from "../functions-shared/function_settings.ts";
import { connectDb } from "../functions-shared/sync_db.ts";
import { TABLES, type TableSpec } from "../functions-shared/table_registry.ts";
import { up } from "../local-stack/stack.ts";
import { DENO_PARTS, startDenoPart } from "../local-stack/deno_parts.ts";
import { readStackEnv } from "../local-stack/stack_env.ts";
import { STACK_ENV_FILE } from "../local-stack/config.ts";
import { parseFaults } from "../local-stack/aws/faults.ts";
import { logFile, sleep } from "../local-stack/processes.ts";
import {
  HANDS_ON_FUNCTIONS,
  isolateLogOffset,
  killsSince,
  logTextSince,
} from "../local-stack/supabase/isolate_log.ts";
import { droppedLines } from "../local-stack/supabase/log_limits.ts";
import { ADMIN_EDIT_TABLE, type AdminEdit, adminEdit } from "./admin_edit.ts";
import { LIVE_TABLES, liveBurst } from "./live_changes.ts";
import { drained, redeliver } from "./live_streams.ts";
import {
  openProblems,
  printReport,
  reportOf,
  type TableVerdict,
  validateTable,
} from "./migration_report.ts";
import { PhaseClock } from "./phase_clock.ts";
import { StartBoard } from "./start_board.ts";
import {
  atMost,
  liveGroups,
  loadOrder,
  segmentsFor,
  settleLater,
  validationPlaces,
} from "./start_plan.ts";

const say = (line = "") => console.log(line);

/** Starts the stream poller (`up({ freshSources: true })` leaves it stopped), as `up` starts it. */
async function restartPoller(): Promise<void> {
  const poller = DENO_PARTS.find((part) => part.name === "stream_poller")!;
  await startDenoPart(poller, readStackEnv());
}

if (import.meta.main) {
  // Checked before anything is reset: a bad value (or an unknown option) must cost nothing.
  let args: { scale: number; seed: number };
  try {
    const { values } = parseArgs({
      args: Deno.args,
      options: {
        scale: { type: "string", default: "1" },
        seed: { type: "string", default: "20260206" },
      },
    });
    args = dataSetArgs(values.scale, values.seed);
  } catch (error) {
    console.error(`npm start: ${(error as Error).message}`);
    Deno.exit(2);
  }
  const { scale, seed } = args;
  const clock = new PhaseClock();
  // DynamoDB Local afresh, the source tables empty without streams and the poller stopped
  // (what resetSources did after `up`, with a second Java start): `up` starts that JVM
  // beside Postgres.
  const stackUp = clock.time("stack up", () => up({ freshSources: true }));
  // The data set is generated (3 s of CPU at scale 1) while `up` waits for its processes.
  const generated = clock.time(
    "generate the data set",
    () => Promise.resolve(demoItems(seed, scale)),
  );
  await stackUp;
  const data = await generated;
  const isolateLog = isolateLogOffset();
  const functionsLog = isolateLogOffset(logFile("functions"));
  const env = readStackEnv();
  const sql = connectDb(env.DATABASE_URL, 6);
  const tty = Deno.stdout.isTerminal();
  let board: StartBoard | undefined;
  try {
    say(`npm start: loading the demo data set (seed ${seed}, scale ${scale}) into DynamoDB Local`);
    say("npm start: each table is backfilled through the import-worker once it is loaded");
    const counts = Object.fromEntries(
      TABLES.map((t) => [t.sourceTable, data[t.sourceTable].length]),
    );
    await clock.time("empty the targets", async () => {
      await emptyTargets(sql);
      await forgetOldStreams(sql);
    });
    // The poller (left stopped by `up`) starts just before the first live write, once the
    // big tables are loaded (the small ones load after them): nothing else writes to a
    // table once its stream is on, the poller reads each stream from its oldest record,
    // and its reads of the streams being written (every 250 ms per shard, each one dear
    // in DynamoDB Local: local-stack/aws/idle_polls.ts) slowed the loads beside it.
    let pollerStarted: Promise<void> | undefined;
    const pollerBack = () => {
      pollerStarted ??= clock.time("stream poller restart", restartPoller);
      return pollerStarted;
    };
    board = new StartBoard(sql, TABLES, counts, {
      tty,
      write: (text) => Deno.stdout.writeSync(new TextEncoder().encode(text)),
      everyMs: 5_000,
    });
    board.start();
    const loads: string[] = [];
    // Each table's backfill, settled when its job has finished (known before it is queued,
    // so that validations can wait for it while other tables still load); and its load.
    const backfilled = new Map(TABLES.map((t) => [t.targetTable, settleLater()]));
    const loaded = new Map(TABLES.map((t) => [t.targetTable, settleLater()]));
    // When each table was last written: its validation's Scan is eventually consistent
    // and sees what is older than the stale window (docs/sync-semantics.md,
    // "Verification"), so it starts after it, for the report's counts to be exact.
    const lastWrite = new Map<string, number>();
    const staleMs = parseFaults(env.DYNAMODB_FAULTS).staleMs;
    const loadOne = async (spec: TableSpec) => {
      const table = spec.targetTable;
      const items = data[spec.sourceTable];
      board!.set(table, { stage: "loading", written: 0, total: items.length });
      const load = await clock.time(
        `load ${table}`,
        () =>
          loadTable(env, spec, items, (written) => {
            board!.set(table, { stage: "loading", written, total: items.length });
          }),
      );
      loads.push(loadLine(load));
      lastWrite.set(table, Date.now());
      loaded.get(table)!.resolve();
      clock.start(`backfill ${table}`);
      const [job] = await sql`
        select sync.start_backfill(${spec.sourceTable}, ${segmentsFor(items.length)}) as id`;
      const done = board!.follow(table, String(job.id)).then((end) => {
        clock.end(`backfill ${table}`);
        if (end.status !== "done") {
          throw new Error(
            `backfill job ${job.id} of ${spec.sourceTable} ${end.status}: ${end.error}`,
          );
        }
      });
      done.then(backfilled.get(table)!.resolve, backfilled.get(table)!.reject);
    };
    const loading = (async () => {
      for (const spec of loadOrder(TABLES)) await loadOne(spec);
    })();
    // Once every stream is on, what a check saw meanwhile is forgotten too (forgetOldStreams).
    const forgotten = loading.then(() => forgetOldStreams(sql));
    forgotten.catch(() => {}); // awaited at the end
    // A load that fails fails every table still waiting for its load or backfill.
    loading.catch((error) => {
      backfilled.forEach((b) => b.reject(error));
      loaded.forEach((l) => l.reject(error));
    });

    // The live phase in parts (liveGroups), each once its tables are loaded (their streams
    // on), one after the other; a part's drain and redelivery read its tables' streams.
    const inOrder = atMost(1);
    const groups = liveGroups(LIVE_TABLES);
    const liveParts = groups.map((group, i) => {
      const suffix = i === 0 ? "" : " (small tables)";
      const part = (async () => {
        await Promise.all([...group].map((t) => loaded.get(t)!.promise));
        await pollerBack();
        return await inOrder(async () => {
          clock.start(`live changes${suffix}`);
          board!.live(`writing the burst${suffix}`);
          const changes = await clock.time(
            `live burst${suffix}`,
            () => liveBurst(env, seed, data, group),
          );
          for (const t of group) lastWrite.set(t, Date.now());
          board!.live(`${changes} changes written${suffix}; waiting for the streams to drain`);
          await clock.time(`live drain${suffix}`, () => drained(env, sql, 120_000, group));
          board!.live(`drained${suffix}; delivering its records again, late and newest first`);
          const again = await clock.time(
            `live redelivery${suffix}`,
            () => redeliver(env, group, (line) => board!.note(line)),
          );
          const seconds = clock.end(`live changes${suffix}`);
          board!.live(
            `${changes} applied, ${again} delivered again${suffix}, in ${seconds.toFixed(1)}s`,
          );
          return { changes, again };
        });
      })();
      part.catch(() => {});
      return { group, part };
    });
    const liveOf = (table: string) => liveParts.find((p) => p.group.has(table))!.part;
    const live = Promise.all(liveParts.map((p) => p.part)).then((parts) => ({
      changes: parts.reduce((n, p) => n + p.changes, 0),
      again: parts.reduce((n, p) => n + p.again, 0),
      seconds: clock.span("live changes"),
    }));
    live.catch(() => {});

    const placeOf = validationPlaces(TABLES, VALIDATOR_SETTINGS.runsPerIsolate.default!);
    let edited: AdminEdit | undefined;
    const verdicts: TableVerdict[] = await Promise.all(TABLES.map(async (spec) => {
      const table = spec.targetTable;
      await backfilled.get(table)!.promise;
      if (LIVE_TABLES.has(table)) await liveOf(table);
      if (table === ADMIN_EDIT_TABLE) {
        // An admin's edit, written back to DynamoDB and streamed back before validation.
        edited = await clock.time("admin edit", () => adminEdit(sql, data));
        lastWrite.set(table, Date.now());
      }
      board!.set(table, { stage: "ready" });
      // The stale window is waited out before taking a place, not while holding one.
      await sleep((lastWrite.get(table) ?? 0) + staleMs - Date.now());
      const verdict = await placeOf(table)(() => {
        board!.set(table, { stage: "validating" });
        return clock.time(`validate ${table}`, () => validateTable(env, sql, spec));
      });
      board!.set(table, { stage: "validated", match: verdict.match });
      return verdict;
    }));
    await loading;
    await forgotten;
    const { changes, again, seconds } = await live;
    await board.stop();
    board = undefined;
    say(`\n${loads.join("\n")}`);
    say(`npm start: ${changes} live changes applied in ${seconds.toFixed(1)}s`);
    say(`npm start: ${again} stream records delivered again, late and out of order`);
    if (edited) {
      say(
        `npm start: an admin renamed ${ADMIN_EDIT_TABLE} [source_id=${
          JSON.stringify(edited.key)
        }] to ${JSON.stringify(edited.to)}: write-back ${edited.status}`,
      );
    }
    const report = reportOf(verdicts);
    printReport(report.rows, {
      backfillSeconds: clock.span("backfill "),
      liveSeconds: seconds,
      wholeSeconds: clock.elapsedMs() / 1000,
      phases: clock.lines(),
    }, STACK_ENV_FILE);
    // A killed isolate loses nothing (its lease is resumed) but on a hosted project it is
    // a 546 and a stalled minute: the functions must hand on before the hard limit.
    const problems = [
      ...await openProblems(sql, report.unmappable),
      ...killsSince(isolateLog, HANDS_ON_FUNCTIONS),
      // A line past hosted's log limit is dropped there, an error's as likely as any.
      ...droppedLines(logTextSince(functionsLog, logFile("functions")))
        .map((line) => `a functions' log line hosted would drop (100 in 10 s): ${line}`),
      ...(edited && edited.status !== "applied"
        ? [`${ADMIN_EDIT_TABLE}: the admin edit ended ${edited.status}: ${edited.detail}`]
        : []),
    ];
    if (problems.length > 0) {
      say("\nnpm start: the migration is not done; these need a fix:");
      for (const problem of problems) say(`  ${problem}`);
    }
    Deno.exit(report.allMatch && problems.length === 0 ? 0 : 1);
  } catch (error) {
    await board?.stop().catch(() => {});
    console.error(`npm start: ${(error as Error).message}`);
    say(clock.lines().join("\n"));
    Deno.exit(1);
  } finally {
    await sql.end();
  }
}
