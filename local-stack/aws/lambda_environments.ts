/**
 * Lambda's execution environments for one function, which cannot run here: each is a
 * Deno Worker that loads the function's module (its init) and runs one invocation at a
 * time. An idle environment is used again, its module state kept (a cached secret, open
 * sockets), as Lambda does. An invocation that outlasts the function's timeout, or that
 * crashes its environment, ends it: "If the Lambda function crashes or times out during
 * the Invoke phase, Lambda resets the execution environment" (Lambda's execution
 * environment lifecycle, https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html),
 * so nothing of that invocation runs on (no request sent after the timeout) and the next
 * invocation starts a new environment, init again. The event source mapping's place is
 * given back only once the environment has ended.
 *
 * @module
 */
import type {
  BatchResponse,
  DynamoDBStreamEvent,
  LambdaContext,
} from "../../lambda/stream_forwarder.ts";

/** A function as the event source mapping invokes it: the event, within `timeoutMs`. */
export type LambdaFunction = (
  event: DynamoDBStreamEvent,
  timeoutMs: number,
) => Promise<BatchResponse | void>;

/** What an environment's worker is sent and answers (lambda_environment_worker.ts). */
export type EnvironmentRequest =
  | { module: string }
  | { event: DynamoDBStreamEvent; deadline: number; requestId: string };
export type EnvironmentAnswer = { result: BatchResponse | void } | { error: string };

/** The message of an invocation that outlasted the function's timeout (Lambda's). */
export function timedOut(timeoutMs: number): string {
  return `Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`;
}

/** The environments of the function whose handler is `moduleUrl`'s `handler` export. */
export class LambdaEnvironments {
  #idle: Worker[] = [];
  readonly #moduleUrl: string;

  constructor(moduleUrl: URL | string) {
    this.#moduleUrl = String(moduleUrl);
  }

  /** Invokes the function: answers its result, or rejects with its error or timeout. */
  invoke: LambdaFunction = (event, timeoutMs) => {
    const worker = this.#idle.pop() ?? this.#start();
    return new Promise((resolve, reject) => {
      const end = (outcome: () => void, keep: boolean) => {
        clearTimeout(timer);
        worker.onmessage = null;
        worker.onerror = null;
        if (keep) this.#idle.push(worker);
        else worker.terminate();
        outcome();
      };
      const timer = setTimeout(
        () => end(() => reject(new Error(timedOut(timeoutMs))), false),
        timeoutMs,
      );
      worker.onmessage = (message: MessageEvent<EnvironmentAnswer>) => {
        const answer = message.data;
        if ("error" in answer) end(() => reject(new Error(answer.error)), true);
        else end(() => resolve(answer.result), true);
      };
      worker.onerror = (error: ErrorEvent) => {
        error.preventDefault();
        end(() => reject(new Error(`the execution environment crashed: ${error.message}`)), false);
      };
      const request: EnvironmentRequest = {
        event,
        deadline: Date.now() + timeoutMs,
        requestId: crypto.randomUUID(),
      };
      worker.postMessage(request);
    });
  };

  /** Ends every idle environment (the mapping stopped). */
  close(): void {
    for (const worker of this.#idle.splice(0)) worker.terminate();
  }

  #start(): Worker {
    const worker = new Worker(new URL("./lambda_environment_worker.ts", import.meta.url), {
      type: "module",
    });
    const init: EnvironmentRequest = { module: this.#moduleUrl };
    worker.postMessage(init);
    return worker;
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
