/**
 * The loading half of `npm run bench -- export` (tests/bench_export.ts), in a process of
 * its own so that its peak memory is the loader's alone, not the export writer's: loads
 * the export backfill jobs named on the command line as `npm run backfill --
 * --from-export` loads them (functions-shared/export_load.ts, `BENCH_EXPORT_WORKERS`
 * workers per job, over a direct connection, within the command's own pool and file
 * slots: scripts/backfill_from_exports.ts), then prints one JSON line: the seconds,
 * this process's CPU seconds and its peak resident memory (VmHWM, the kernel's own
 * high-water mark). BENCH_EXPORT_PAGE_BY_PAGE=1 loads page by page, as before the chunks
 * (functions-shared/export_load.ts), for a comparison in the same conditions.
 *
 * `deno run -A tests/bench_export_load.ts <export time ISO> <job> [<job> ...]`
 *
 * @module
 */

import { processMeter } from "../functions-shared/cpu_meter.ts";
import { isSharedPooler, parseDbUrl } from "../functions-shared/db_url.ts";
import { loadExportJob } from "../functions-shared/export_load.ts";
import { RunGate } from "../functions-shared/run_gate.ts";
import { connectDb as connectPool } from "../functions-shared/sync_db.ts";
import { s3Client } from "../local-stack/aws/s3_client.ts";
import {
  exportFileSlots,
  exportLoaderName,
  exportPoolSize,
} from "../scripts/backfill_from_exports.ts";
import { exportFileOpener } from "../scripts/export_s3.ts";
import { stack } from "./stack_clients.ts";

/** CPU seconds (user + system) of this process, from /proc/self/stat (100 ticks a second). */
export function ownCpuSeconds(): number {
  const fields = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** This process's peak resident memory in MB (VmHWM of /proc/self/status). */
export function peakRssMb(): number {
  const line = Deno.readTextFileSync("/proc/self/status").split("\n")
    .find((l) => l.startsWith("VmHWM:"));
  return Number(line?.match(/(\d+)/)?.[1] ?? 0) / 1024;
}

if (import.meta.main) {
  const [time, ...jobs] = Deno.args;
  const readAt = new Date(time);
  const workers = Number(Deno.env.get("BENCH_EXPORT_WORKERS") ?? 2);
  // The command's connections and file slots, by its own functions: a pool of a
  // connection a worker let every worker load at once, which the command never does.
  const pooled = isSharedPooler(parseDbUrl(stack.DATABASE_URL));
  const poolSize = exportPoolSize(workers, jobs.length, pooled);
  const pool = connectPool(stack.DATABASE_URL, poolSize);
  const fileSlots = new RunGate(exportFileSlots(poolSize));
  const loaderName = exportLoaderName(Deno.hostname(), Deno.pid, crypto.randomUUID());
  const client = s3Client(stack.S3_ENDPOINT);
  const open = exportFileOpener(client, stack.EXPORT_BUCKET);
  const cpuBefore = ownCpuSeconds();
  const started = performance.now();
  try {
    await Promise.all(jobs.map((job) =>
      loadExportJob(job, workers, loaderName, {
        sql: pool,
        open,
        readAt,
        cpu: processMeter(() => ({ user: 0, system: 0 })),
        fileSlots,
        log: (line) => console.error(line),
        pageByPage: Deno.env.get("BENCH_EXPORT_PAGE_BY_PAGE") === "1",
      })
    ));
  } finally {
    client.destroy();
    await pool.end();
  }
  console.log(JSON.stringify({
    seconds: (performance.now() - started) / 1000,
    cpuSeconds: ownCpuSeconds() - cpuBefore,
    peakRssMb: peakRssMb(),
  }));
}
