// A function run by aws-lambda-ric (npm) as a custom runtime, deployed by
// tests/e2e/test_real_runtimes.py. The event's "action" picks the behaviour.
import { randomUUID } from "node:crypto";
import { appendFileSync, readFileSync } from "node:fs";

// Module state: survives between invocations of one execution environment.
const TOKEN = randomUUID();
let count = 0;
console.log(`node-ric init token=${TOKEN}`);

const ENV_NAMES = [
  "AWS_LAMBDA_FUNCTION_NAME",
  "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
  "AWS_LAMBDA_FUNCTION_VERSION",
  "AWS_LAMBDA_LOG_GROUP_NAME",
  "AWS_LAMBDA_LOG_STREAM_NAME",
  "AWS_LAMBDA_RUNTIME_API",
  "AWS_REGION",
  "AWS_DEFAULT_REGION",
  "AWS_EXECUTION_ENV",
  "LAMBDA_TASK_ROOT",
  "LAMBDA_RUNTIME_DIR",
  "TZ",
  "_HANDLER",
  "_X_AMZN_TRACE_ID",
  "KILN_TEST_VAR",
];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const handler = async (event, context) => {
  count += 1;
  const action = (event && event.action) || "echo";
  console.log(`node-ric action=${action} request=${context.awsRequestId}`);
  console.error("node-ric stderr line");
  switch (action) {
    case "echo":
      return { runtime: "node", echo: event };
    case "error":
      throw new TypeError(`node handler failed on purpose: ${JSON.stringify(event.message)}`);
    case "env":
      return {
        env: Object.fromEntries(ENV_NAMES.map((name) => [name, process.env[name] ?? null])),
        cwd: process.cwd(),
        uid: process.getuid(),
        context: {
          request_id: context.awsRequestId,
          remaining_ms: context.getRemainingTimeInMillis(),
          invoked_function_arn: context.invokedFunctionArn,
          function_name: context.functionName,
          memory: context.memoryLimitInMB,
          version: context.functionVersion,
          log_group: context.logGroupName,
          log_stream: context.logStreamName,
          client_context_custom: context.clientContext ? context.clientContext.custom : null,
        },
      };
    case "sleep": {
      const ms = event.ms ?? 1000;
      await sleep(ms);
      return { slept_ms: ms, token: TOKEN };
    }
    case "alloc": {
      // 1 MiB at a time, every page written, so the cgroup sees real usage.
      const blocks = [];
      for (let i = 0; i < (event.mb ?? 300); i++) blocks.push(Buffer.alloc(1 << 20, 1));
      return { allocated_mb: blocks.length };
    }
    case "crash":
      console.log(`node-ric exiting with ${event.code ?? 3}`);
      process.exit(event.code ?? 3);
    case "count":
      return { count, token: TOKEN };
    case "tmp": {
      appendFileSync("/tmp/node-ric.txt", context.awsRequestId + "\n");
      const lines = readFileSync("/tmp/node-ric.txt", "utf8").split("\n").filter(Boolean).length;
      return { lines, count, token: TOKEN };
    }
    default:
      throw new Error(`unknown action ${action}`);
  }
};
