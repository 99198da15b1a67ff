// Kiln's bundled Node.js runtime: runs a Lambda handler over the Lambda Runtime API.
//
// Started as `node index.mjs` with the Lambda environment (`_HANDLER`, `AWS_LAMBDA_RUNTIME_API`,
// `LAMBDA_TASK_ROOT`, ...), it behaves like AWS's Node.js runtime: CommonJS and ES module
// handlers, async and callback handlers, the same `context` object, error payloads
// (`errorType`, `errorMessage`, `trace`) and error types (`Runtime.ImportModuleError`,
// `Runtime.HandlerNotFound`, `Runtime.UserCodeSyntaxError`, ...), and console lines shaped
// `timestamp\trequestId\tLEVEL\tmessage`. Node's standard library only.

import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import util from "node:util";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const RUNTIME_PATH = "/2018-06-01/runtime";
const [apiHost, apiPort] = splitAddress(process.env.AWS_LAMBDA_RUNTIME_API || "127.0.0.1:9001");
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
let currentRequestId = "";

function splitAddress(address) {
  const index = address.lastIndexOf(":");
  return [address.slice(0, index) || "127.0.0.1", Number(address.slice(index + 1))];
}

function request(method, urlPath, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(body);
    const req = http.request(
      {
        host: apiHost,
        port: apiPort,
        method,
        path: urlPath,
        agent,
        headers: payload ? { ...headers, "Content-Length": payload.length } : headers,
      },
      (res) => {
        const chunks = [];
        res.on("data", (chunk) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (payload) req.write(payload);
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------
// Console: Lambda's line format, written synchronously so output stays in order with results.

const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
const minimumLevel = LEVELS.indexOf((process.env.AWS_LAMBDA_LOG_LEVEL || "TRACE").toUpperCase());

function patchConsole() {
  const write = (level) => (...args) => {
    if (LEVELS.indexOf(level) < minimumLevel) return;
    const message = util.format(...args).replace(/\n/g, "\r");
    fs.writeSync(1, `${new Date().toISOString()}\t${currentRequestId}\t${level}\t${message}\n`);
  };
  console.trace = write("TRACE");
  console.debug = write("DEBUG");
  console.info = write("INFO");
  console.log = write("INFO");
  console.warn = write("WARN");
  console.error = write("ERROR");
  console.fatal = write("FATAL");
}

// ---------------------------------------------------------------------------------------------
// Errors, shaped as AWS's Node.js runtime shapes them.

class RuntimeError extends Error {
  constructor(errorType, message, stack) {
    super(message);
    this.name = errorType;
    this.errorType = errorType;
    if (stack) this.stack = stack;
  }
}

function toErrorPayload(error) {
  if (error instanceof Error) {
    const trace = typeof error.stack === "string" ? error.stack.split("\n") : [];
    return {
      errorType: error.errorType || error.name || "Error",
      errorMessage: error.message,
      trace,
    };
  }
  // Anything thrown or passed to the callback that is not an Error.
  return {
    errorType: typeof error === "string" ? "string" : typeof error,
    errorMessage: typeof error === "string" ? error : JSON.stringify(error),
    trace: [],
  };
}

function logError(prefix, payload) {
  const logged = { errorType: payload.errorType, errorMessage: payload.errorMessage, stack: payload.trace };
  fs.writeSync(
    1,
    `${new Date().toISOString()}\t${currentRequestId}\tERROR\t${prefix} \t${JSON.stringify(logged)}\n`,
  );
}

async function postError(urlPath, error) {
  const payload = toErrorPayload(error);
  logError(urlPath.endsWith("/init/error") ? "Init Error" : "Invoke Error", payload);
  await request("POST", urlPath, JSON.stringify(payload), {
    "Content-Type": "application/json",
    "Lambda-Runtime-Function-Error-Type": payload.errorType,
  });
}

// ---------------------------------------------------------------------------------------------
// Loading the handler: `dir/module.function[.nested]` with module.mjs, .cjs or .js.

function isModuleType(directory, root) {
  let current = directory;
  while (current.startsWith(root)) {
    const manifest = path.join(current, "package.json");
    if (fs.existsSync(manifest)) {
      try {
        return JSON.parse(fs.readFileSync(manifest, "utf8")).type === "module";
      } catch {
        return false;
      }
    }
    const parent = path.dirname(current);
    if (parent === current) break;
    current = parent;
  }
  return false;
}

async function importModule(root, modulePath) {
  const base = path.resolve(root, modulePath);
  for (const extension of [".mjs", ".cjs", ".js"]) {
    const file = base + extension;
    if (!fs.existsSync(file)) continue;
    if (extension === ".mjs" || (extension === ".js" && isModuleType(path.dirname(file), root))) {
      return import(pathToFileURL(file).href);
    }
    // Required from the runtime, as AWS's runtime does: a missing dependency's "Require stack"
    // then ends with /var/runtime/index.mjs.
    return createRequire(import.meta.url)(file);
  }
  // Not a file in the code: a package from node_modules (or a layer) by that name.
  try {
    return createRequire(path.join(root, "index.js"))(modulePath);
  } catch (error) {
    if (error && error.code === "MODULE_NOT_FOUND") {
      throw new RuntimeError(
        "Runtime.ImportModuleError",
        `Error: Cannot find module '${modulePath}'\nRequire stack:\n- ${import.meta.filename ?? "runtime"}`,
      );
    }
    throw error;
  }
}

async function loadHandler(root, handlerString) {
  const base = path.basename(handlerString);
  const directory = handlerString.slice(0, handlerString.length - base.length);
  const dot = base.indexOf(".");
  if (dot <= 0 || dot === base.length - 1) {
    throw new RuntimeError("Runtime.MalformedHandlerName", "Bad handler");
  }
  const modulePath = directory + base.slice(0, dot);
  const names = base.slice(dot + 1).split(".");
  let loaded;
  try {
    loaded = await importModule(root, modulePath);
  } catch (error) {
    if (error instanceof RuntimeError) throw error;
    if (error instanceof SyntaxError) {
      throw new RuntimeError("Runtime.UserCodeSyntaxError", `${error.name}: ${error.message}`, error.stack);
    }
    if (error && (error.code === "MODULE_NOT_FOUND" || error.code === "ERR_MODULE_NOT_FOUND")) {
      throw new RuntimeError("Runtime.ImportModuleError", `Error: ${error.message}`, error.stack);
    }
    throw error;
  }
  let handler = loaded;
  for (const name of names) {
    handler = handler == null ? undefined : handler[name];
  }
  if (handler === undefined && loaded && loaded.default) {
    // An ES module re-exporting a CommonJS module keeps its exports on `default`.
    handler = loaded.default;
    for (const name of names) handler = handler == null ? undefined : handler[name];
  }
  if (typeof handler !== "function") {
    throw new RuntimeError("Runtime.HandlerNotFound", `${handlerString} is undefined or not exported`);
  }
  return handler;
}

// ---------------------------------------------------------------------------------------------
// The invocation loop.

function makeContext(headers, onDone) {
  const deadline = Number(headers["lambda-runtime-deadline-ms"] || 0);
  const parse = (name) => (headers[name] ? JSON.parse(headers[name]) : undefined);
  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: headers["lambda-runtime-invoked-function-arn"],
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: headers["lambda-runtime-aws-request-id"],
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    identity: parse("lambda-runtime-cognito-identity"),
    clientContext: parse("lambda-runtime-client-context"),
    tenantId: headers["lambda-runtime-aws-tenant-id"],
    getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
    // Legacy completion functions.
    done: (error, result) => onDone(error, result),
    succeed: (result) => onDone(null, result),
    fail: (error) => onDone(error ?? "handled"),
  };
  return context;
}

function invoke(handler, event, headers) {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (error, result) => {
      if (settled) return;
      settled = true;
      resolve({ error, result });
    };
    const context = makeContext(headers, (error, result) =>
      finish(error === null || error === undefined ? undefined : error, result),
    );
    const callback = (error, result) =>
      finish(error === null || error === undefined ? undefined : error, result);
    try {
      const returned = handler(event, context, callback);
      if (returned && typeof returned.then === "function") {
        returned.then((result) => finish(undefined, result), (error) => finish(error ?? new Error("undefined")));
      } else if (handler.length < 3) {
        // Neither async nor callback-style: the return value is the result.
        finish(undefined, returned);
      }
    } catch (error) {
      finish(error);
    }
  });
}

async function main() {
  patchConsole();
  const root = process.env.LAMBDA_TASK_ROOT || "/var/task";
  let handler;
  try {
    handler = await loadHandler(root, process.env._HANDLER || "");
  } catch (error) {
    await postError(`${RUNTIME_PATH}/init/error`, error);
    process.exit(1);
  }
  for (;;) {
    const next = await request("GET", `${RUNTIME_PATH}/invocation/next`);
    const headers = next.headers;
    const requestId = headers["lambda-runtime-aws-request-id"];
    currentRequestId = requestId;
    if (headers["lambda-runtime-trace-id"]) {
      process.env._X_AMZN_TRACE_ID = headers["lambda-runtime-trace-id"];
    } else {
      delete process.env._X_AMZN_TRACE_ID;
    }
    let event;
    try {
      event = next.body.length ? JSON.parse(next.body.toString("utf8")) : {};
    } catch (error) {
      await postError(
        `${RUNTIME_PATH}/invocation/${requestId}/error`,
        new RuntimeError("Runtime.UnmarshalError", `Unable to parse the event: ${error.message}`),
      );
      continue;
    }
    const { error, result } = await invoke(handler, event, headers);
    if (error !== undefined) {
      await postError(`${RUNTIME_PATH}/invocation/${requestId}/error`, error);
      continue;
    }
    let body;
    try {
      body = result === undefined ? "null" : JSON.stringify(result);
    } catch (marshal) {
      await postError(
        `${RUNTIME_PATH}/invocation/${requestId}/error`,
        new RuntimeError("Runtime.MarshalError", `Unable to stringify response body: ${marshal.message}`),
      );
      continue;
    }
    await request("POST", `${RUNTIME_PATH}/invocation/${requestId}/response`, body, {
      "Content-Type": "application/json",
    });
  }
}

process.on("unhandledRejection", (reason) => {
  console.error("Unhandled Promise Rejection", reason);
});

main().catch((error) => {
  fs.writeSync(2, `kiln node runtime failed: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
