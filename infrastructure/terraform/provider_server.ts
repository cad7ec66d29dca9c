/**
 * The AWS provider started once and shared by the terraform commands of one check, where
 * terraform would otherwise start it anew for every configuration it meets: `terraform
 * test` of mmp-toledo-sync started it 33 times for 8 run blocks (about 0.45 CPU seconds
 * each, a 700 MB Go program building its schemas), and a plan three times.
 *
 * A provider started with `-debug` listens and prints the `TF_REATTACH_PROVIDERS` value
 * under which terraform uses it instead of starting its own ("Running Terraform With A
 * Provider In Debug Mode", https://developer.hashicorp.com/terraform/plugin/debugging).
 * It is the same binary, the one `terraform init` installed from the mirror, with the
 * same schemas and the same checks; terraform leaves it running, and {@link
 * ProviderServer.stop} ends it.
 *
 * One process serves every provider configuration of a command, so it keeps one
 * configuration at a time: share it only where terraform configures no provider (mocked
 * providers in `terraform test`, `terraform show`) or exactly one (a plan with a single
 * provider block). A plan with two aliases (two regions) must start its own.
 *
 * @module
 */

import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

/** A provider listening for terraform, and the environment that points terraform at it. */
export interface ProviderServer {
  /** `TF_REATTACH_PROVIDERS`, to add to the environment of the terraform commands. */
  env: { TF_REATTACH_PROVIDERS: string };
  /** Ends the provider and waits for it. */
  stop(): Promise<void>;
  /** Resolves when the provider has ended, however. */
  ended: Promise<void>;
}

/**
 * The AWS provider's binary that `terraform init` installed under a data folder
 * (`TF_DATA_DIR`): `providers/registry.terraform.io/hashicorp/aws/<version>/<os_arch>/`;
 * undefined when there is none, or more than one version.
 */
export function installedProvider(dataDir: string): string | undefined {
  const aws = join(dataDir, "providers", "registry.terraform.io", "hashicorp", "aws");
  if (!existsSync(aws)) return undefined;
  const binaries = readdirSync(aws).flatMap((version) =>
    readdirSync(join(aws, version)).flatMap((platform) =>
      readdirSync(join(aws, version, platform))
        .filter((name) => name.startsWith("terraform-provider-aws"))
        .map((name) => join(aws, version, platform, name))
    )
  );
  return binaries.length === 1 ? binaries[0] : undefined;
}

/**
 * The `TF_REATTACH_PROVIDERS` value in what a provider started with `-debug` printed
 * (`TF_REATTACH_PROVIDERS='{"registry.terraform.io/hashicorp/aws":{...}}'`), once it
 * names the AWS provider's address; undefined before.
 */
export function reattachValue(printed: string): string | undefined {
  const quoted = printed.match(/TF_REATTACH_PROVIDERS='(\{.*\})'/)?.[1];
  if (quoted === undefined) return undefined;
  try {
    const parsed = JSON.parse(quoted);
    return parsed?.["registry.terraform.io/hashicorp/aws"]?.Addr?.String ? quoted : undefined;
  } catch {
    return undefined;
  }
}

/** How a provider server is started: its environment, its priority, how long it may take. */
export interface ProviderServerOptions {
  env?: Record<string, string>;
  /** Runs it under `nice -n niceness` (a check off the critical path). */
  niceness?: number;
  /** How long it may take to listen; 60 s by default (a loaded machine). */
  timeoutMs?: number;
  /**
   * How long it may live, in seconds (900 by default): a provider in debug mode has no tie
   * to the process that started it, so one whose starter died without stopping it (killed,
   * or ended by an error elsewhere) ends by itself then (GNU `timeout`).
   */
  lifetimeSeconds?: number;
}

/** How long a provider asked to stop may take before it is killed, in seconds. */
const KILL_AFTER_SECONDS = 10;

/**
 * Starts `binary` with `-debug` and resolves once it listens. Rejects, naming the binary
 * and what it printed, when it exits first or does not listen in time (it is ended then).
 */
export async function startProviderServer(
  binary: string,
  options: ProviderServerOptions = {},
): Promise<ProviderServer> {
  // `timeout` passes a signal it is sent on to the provider (SIGINT, on which the debug
  // mode ends cleanly, removing its socket) and kills the provider 10 s later if it has
  // not ended (`-k`, which a signal sent to `timeout` starts too). `--foreground` keeps it
  // in its starter's process group, so that a Ctrl-C of `npm test` reaches the provider.
  const lifetime = [
    "timeout",
    "--foreground",
    "-s",
    "INT",
    "-k",
    String(KILL_AFTER_SECONDS),
    String(options.lifetimeSeconds ?? 900),
  ];
  const command = [...lifetime, binary, "-debug"];
  const [program, ...args] = options.niceness === undefined
    ? command
    : ["nice", "-n", String(options.niceness), ...command];
  const child = new Deno.Command(program, {
    args,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  let exited = false;
  child.status.then(() => (exited = true));
  const signal = (name: Deno.Signal) => {
    try {
      child.kill(name);
    } catch {
      // It has ended already.
    }
  };
  // `timeout` kills the provider KILL_AFTER_SECONDS after the SIGINT; SIGKILL ends
  // `timeout` itself only if it has not ended a few seconds after that.
  const stop = async () => {
    signal("SIGINT");
    const killer = setTimeout(() => signal("SIGKILL"), (KILL_AFTER_SECONDS + 5) * 1000);
    await child.status;
    clearTimeout(killer);
  };
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let printed = "";
  const timeoutMs = options.timeoutMs ?? 60_000;
  const timer = setTimeout(() => stop(), timeoutMs);
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) {
        throw new Error(
          `The AWS provider ${binary} ended (or took over ${timeoutMs} ms) before it ` +
            `listened in debug mode; it printed: ${printed.slice(-500) || "nothing"}`,
        );
      }
      printed += value;
      const reattach = reattachValue(printed);
      if (reattach !== undefined && !exited) {
        // Whatever it prints later is read and dropped, so that it never blocks on a pipe.
        (async () => {
          while (!(await reader.read()).done);
        })().catch(() => {});
        return {
          env: { TF_REATTACH_PROVIDERS: reattach },
          stop,
          ended: child.status.then(() => {}),
        };
      }
    }
  } catch (error) {
    await stop();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `work` with the environment that shares one AWS provider across its terraform
 * commands: the provider `terraform init` installed under `dataDir`, started before and
 * ended after. Where it cannot be started (no single installed binary, no `-debug`), `work`
 * gets an empty environment, terraform starts the provider as it would by itself, and
 * `note` is told why: the checks are the same, only dearer.
 */
export async function withProviderServer<T>(
  dataDir: string,
  options: ProviderServerOptions & { note?: (why: string) => void },
  work: (env: Partial<ProviderServer["env"]>) => Promise<T>,
): Promise<T> {
  let server: ProviderServer | undefined;
  try {
    const binary = installedProvider(dataDir);
    if (binary === undefined) throw new Error(`no single AWS provider installed in ${dataDir}`);
    server = await startProviderServer(binary, options);
  } catch (error) {
    options.note?.(`terraform starts the AWS provider itself: ${(error as Error).message}`);
  }
  try {
    return await work(server?.env ?? {});
  } finally {
    await server?.stop();
  }
}
