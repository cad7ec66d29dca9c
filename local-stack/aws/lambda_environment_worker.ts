/**
 * One Lambda execution environment (lambda_environments.ts): loads the function's module
 * when told which (its init), then runs each invocation it is sent with a context whose
 * remaining time runs to the invocation's deadline, and answers its result or its error.
 * An error thrown at init is every invocation's answer, as Lambda reports an init
 * failure (Runtime.ImportModuleError, say) for each invocation.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type {
  BatchResponse,
  DynamoDBStreamEvent,
  LambdaContext,
} from "../../lambda/stream_forwarder.ts";
import type { EnvironmentAnswer, EnvironmentRequest } from "./lambda_environments.ts";

type Handler = (
  event: DynamoDBStreamEvent,
  context: LambdaContext,
) => Promise<BatchResponse | void>;

let handler: Promise<Handler> | undefined;

self.onmessage = async (message: MessageEvent<EnvironmentRequest>) => {
  const request = message.data;
  if ("module" in request) {
    handler = import(request.module).then((module) => {
      if (typeof module.handler !== "function") {
        throw new Error(`${request.module} exports no handler`);
      }
      return module.handler as Handler;
    });
    handler.catch(() => {}); // answered at each invocation
    return;
  }
  let answer: EnvironmentAnswer;
  try {
    const run = await handler!;
    const context: LambdaContext = {
      awsRequestId: request.requestId,
      getRemainingTimeInMillis: () => request.deadline - Date.now(),
    };
    answer = { result: await run(request.event, context) };
  } catch (error) {
    answer = { error: (error as Error)?.message ?? String(error) };
  }
  self.postMessage(answer);
};
