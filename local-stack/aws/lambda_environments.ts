/**
 * Lambda's execution environments for one function, which cannot run here: each is a
 * Deno Worker that loads the function's module (its init) and runs one invocation at a
 * time. An idle environment is used again, its module state kept (a cached secret, open
 * sockets), as Lambda does. An invocation that outlasts the function's timeout, or that
 * crashes its environment, ends it: "If the Lambda function crashes or times out during
 * the Invoke phase, Lambda resets the execution environment" (Lambda's execution
 * environment lifecycle, https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html),
 * so nothing of that invocation runs on (no request sent after the timeout). A first
 * environment's init has a phase of its own, before the invocation's timeout starts; the
 * one that replaces an environment so reset is initialized within the next invocation:
 * "If another Invoke event results in this execution environment being reused, Lambda
 * initializes the runtime and extensions as part of the next invocation", and "The
 * function's timeout setting limits the duration of the entire Invoke phase" (same page):
 * its init counts in that invocation's timeout. The event source mapping's place is given
 * back only once the environment has ended.
 *
 * @module
 */
import type {
  BatchResponse,
  DynamoDBStreamEvent,
  LambdaContext,
} from "../../lambda/stream_records.ts";

/** A function as the event source mapping invokes it: the event, within `timeoutMs`. */
export type LambdaFunction = (
  event: DynamoDBStreamEvent,
  timeoutMs: number,
) => Promise<BatchResponse | void>;

/** What an environment's worker is sent and answers (lambda_environment_worker.ts). */
export type EnvironmentRequest =
  | { module: string }
  | { event: DynamoDBStreamEvent; deadline: number; requestId: string };
export type EnvironmentAnswer =
  | { ready: true }
  | { initError: string }
  | { result: BatchResponse | void }
  | { error: string };

/** The message of an invocation that outlasted the function's timeout (Lambda's). */
export function timedOut(timeoutMs: number): string {
  return `Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`;
}

/**
 * How long an environment's init (loading the module) may take: Lambda gives init a
 * phase of its own, outside the invocation's timeout, of at most 10 seconds ("The Init
 * phase is limited to 10 seconds", Lambda's execution environment lifecycle).
 */
export const INIT_LIMIT_MS = 10_000;

/** An init that ran out of its time (the Init phase's, or an invocation's). */
class InitOutlasted extends Error {
  constructor(limitMs: number) {
    super(`the execution environment's init outlasted ${limitMs / 1000} seconds`);
    this.name = "InitOutlasted";
  }
}

/** An environment: its worker, once its init has ended. */
interface Environment {
  worker: Worker;
}

/** The environments of the function whose handler is `moduleUrl`'s `handler` export. */
export class LambdaEnvironments {
  #idle: Environment[] = [];
  #closed = false;
  /** Environments reset (timed out, crashed) whose next init runs within an invocation. */
  #reset = 0;
  readonly #moduleUrl: string;

  constructor(moduleUrl: URL | string) {
    this.#moduleUrl = String(moduleUrl);
  }

  /** Invokes the function: answers its result, or rejects with its error or timeout. */
  invoke: LambdaFunction = async (event, timeoutMs) => {
    let deadline = Date.now() + timeoutMs;
    let environment = this.#idle.pop();
    if (!environment && this.#reset === 0) {
      // A first init, in a phase of its own: one that outlasts it is tried again within
      // this invocation ("Lambda retries the Init phase at the time of the first function
      // invocation with the configured function timeout", same page).
      environment = await this.#start(INIT_LIMIT_MS).catch((error) => {
        if (error instanceof InitOutlasted) return undefined;
        this.#reset++; // an init error: the next invocation initializes within its timeout
        throw error;
      });
      deadline = Date.now() + timeoutMs;
    } else if (!environment) {
      this.#reset--;
    }
    if (!environment) {
      // Init within this invocation: bounded by its timeout, not by the Init phase's 10 s.
      environment = await this.#start(Math.max(0, deadline - Date.now())).catch((error) => {
        this.#reset++; // the next invocation initializes within its own timeout again
        throw error instanceof InitOutlasted ? new Error(timedOut(timeoutMs)) : error;
      });
    }
    const { worker } = environment;
    const ready = environment;
    return await new Promise((resolve, reject) => {
      const end = (outcome: () => void, keep: boolean) => {
        clearTimeout(timer);
        worker.onmessage = null;
        worker.onerror = (error) => this.#crashedIdle(ready, error);
        if (keep && !this.#closed) this.#idle.push(ready);
        else {
          worker.terminate();
          this.#reset++;
        }
        outcome();
      };
      const timer = setTimeout(
        () => end(() => reject(new Error(timedOut(timeoutMs))), false),
        Math.max(0, deadline - Date.now()),
      );
      worker.onmessage = (message: MessageEvent<EnvironmentAnswer>) => {
        const answer = message.data;
        if ("error" in answer) end(() => reject(new Error(answer.error)), true);
        else if ("result" in answer) end(() => resolve(answer.result), true);
      };
      worker.onerror = (error: ErrorEvent) => {
        error.preventDefault();
        end(() => reject(new Error(`the execution environment crashed: ${error.message}`)), false);
      };
      const request: EnvironmentRequest = { event, deadline, requestId: crypto.randomUUID() };
      worker.postMessage(request);
    });
  };

  /**
   * Ends every environment (the mapping stopped): the idle ones now, one in its init or
   * in an invocation as soon as that ends.
   */
  close(): void {
    this.#closed = true;
    for (const { worker } of this.#idle.splice(0)) worker.terminate();
  }

  /**
   * An idle environment's uncaught error (a timer of its last invocation): it ends, as
   * Lambda ends a crashed environment, and the mapping goes on (unhandled, a worker's
   * error would end this whole process).
   */
  #crashedIdle(environment: Environment, error: ErrorEvent): void {
    error.preventDefault();
    this.#idle = this.#idle.filter((e) => e !== environment);
    environment.worker.terminate();
    console.error(`an idle Lambda execution environment crashed and was ended: ${error.message}`);
  }

  /**
   * A new environment, its init ended: the module loaded, within `limitMs`. An init that
   * fails, crashes or runs out of time ({@link InitOutlasted}) ends the environment; one
   * that fails or crashes fails the invocation that needed it, as Lambda reports an init
   * error, and the next invocation initializes within its own timeout.
   */
  #start(limitMs: number): Promise<Environment> {
    const worker = new Worker(new URL("./lambda_environment_worker.ts", import.meta.url), {
      type: "module",
    });
    return new Promise((resolve, reject) => {
      const fail = (error: Error) => {
        clearTimeout(timer);
        worker.terminate();
        reject(error);
      };
      const timer = setTimeout(() => fail(new InitOutlasted(limitMs)), limitMs);
      worker.onmessage = (message: MessageEvent<EnvironmentAnswer>) => {
        const answer = message.data;
        if ("initError" in answer) fail(new Error(answer.initError));
        else if ("ready" in answer && this.#closed) {
          fail(new Error("the mapping stopped during the init"));
        } else if ("ready" in answer) {
          clearTimeout(timer);
          worker.onmessage = null;
          worker.onerror = null;
          resolve({ worker });
        }
      };
      worker.onerror = (error: ErrorEvent) => {
        error.preventDefault();
        fail(new Error(`the execution environment crashed in its init: ${error.message}`));
      };
      const init: EnvironmentRequest = { module: this.#moduleUrl };
      worker.postMessage(init);
    });
  }
}

/**
 * A handler run in this process, for tests' fakes of the function only: a timed-out
 * invocation is answered as Lambda answers it, but its handler is not stopped.
 */
export function inProcess(
  handler: (event: DynamoDBStreamEvent, context: LambdaContext) => Promise<BatchResponse | void>,
): LambdaFunction {
  return async (event, timeoutMs) => {
    const started = Date.now();
    const context: LambdaContext = {
      awsRequestId: crypto.randomUUID(),
      getRemainingTimeInMillis: () => timeoutMs - (Date.now() - started),
    };
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        handler(event, context),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(timedOut(timeoutMs))), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  };
}
