/**
 * One Lambda execution environment (lambda_environments.ts): loads the function's module
 * when told which (its init) and says it is ready, or why not (Lambda's
 * Runtime.ImportModuleError, say); then runs each invocation it is sent with a context
 * whose remaining time runs to the invocation's deadline, and answers its result or its
 * error.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type {
  BatchResponse,
  DynamoDBStreamEvent,
  LambdaContext,
} from "../../lambda/stream_records.ts";
import type { EnvironmentAnswer, EnvironmentRequest } from "./lambda_environments.ts";

type Handler = (
  event: DynamoDBStreamEvent,
  context: LambdaContext,
) => Promise<BatchResponse | void>;

let handler: Handler | undefined;

self.onmessage = async (message: MessageEvent<EnvironmentRequest>) => {
  const request = message.data;
  if ("module" in request) {
    let answer: EnvironmentAnswer;
    try {
      const module = await import(request.module);
      if (typeof module.handler !== "function") {
        throw new Error(`${request.module} exports no handler`);
      }
      handler = module.handler as Handler;
      answer = { ready: true };
    } catch (error) {
      answer = { initError: (error as Error)?.message ?? String(error) };
    }
    self.postMessage(answer);
    return;
  }
  let answer: EnvironmentAnswer;
  try {
    const context: LambdaContext = {
      awsRequestId: request.requestId,
      getRemainingTimeInMillis: () => request.deadline - Date.now(),
    };
    answer = { result: await handler!(request.event, context) };
  } catch (error) {
    answer = { error: (error as Error)?.message ?? String(error) };
  }
  self.postMessage(answer);
};
