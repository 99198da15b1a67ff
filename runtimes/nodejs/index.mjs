// Kiln's bundled Node.js runtime: runs a Lambda handler over the Lambda Runtime API.
//
// Started as `node index.mjs` with the Lambda environment (`_HANDLER`, `AWS_LAMBDA_RUNTIME_API`,
// `LAMBDA_TASK_ROOT`, ...), it behaves like AWS's Node.js runtime: CommonJS and ES module
// handlers, async and callback handlers, the same `context` object, error payloads
// (`errorType`, `errorMessage`, `trace`) and error types (`Runtime.ImportModuleError`,
// `Runtime.HandlerNotFound`, `Runtime.UserCodeSyntaxError`, ...), and console lines shaped
// `timestamp\trequestId\tLEVEL\tmessage`. Node's standard library only.

import net from "node:net";
import fs from "node:fs";
import path from "node:path";
import util from "node:util";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const RUNTIME_PATH = "/2018-06-01/runtime";
const NEXT_PATH = `${RUNTIME_PATH}/invocation/next`;
let currentRequestId = "";

function splitAddress(address) {
  const index = address.lastIndexOf(":");
  return [address.slice(0, index) || "127.0.0.1", Number(address.slice(index + 1))];
}

// A keep-alive HTTP/1.1 client for the Runtime API, just enough for its calls, on a plain
// socket: node:http's client (agents, request and response streams) costs several
// milliseconds of CPU per call while the JIT is cold, which is most of a function's life when
// it has a fraction of a vCPU. Requests may be pipelined: answers come back in order.
class RuntimeClient {
  constructor(address) {
    [this.host, this.port] = splitAddress(address);
    this.socket = null;
    this.buffer = Buffer.alloc(0);
    this.waiting = [];
  }

  connect() {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: this.host, port: this.port });
      socket.setNoDelay(true);
      socket.once("connect", () => resolve(socket));
      socket.once("error", reject);
      socket.on("data", (chunk) => {
        this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
        this.deliver();
      });
      socket.on("close", () => {
        if (this.socket === socket) this.socket = null;
        this.buffer = Buffer.alloc(0);
        for (const waiter of this.waiting.splice(0)) {
          waiter.reject(new Error("runtime API closed the connection"));
        }
      });
    });
  }

  // Answers waiting requests, in order, with every complete response in the buffer.
  deliver() {
    while (this.waiting.length) {
      const response = parseResponse(this.buffer);
      if (!response) return;
      this.buffer = this.buffer.subarray(response.length);
      this.waiting.shift().resolve(response);
      if ((response.headers.connection || "").toLowerCase() === "close" && this.socket) {
        this.socket.end();
        this.socket = null;
      }
    }
  }

  // Sends `requests` (encoded) in one write; resolves to their responses.
  async exchange(requests) {
    if (!this.socket) {
      const socket = await this.connect();
      socket.removeAllListeners("error");
      socket.on("error", () => {});
      this.socket = socket;
    }
    const answers = requests.map(
      () => new Promise((resolve, reject) => this.waiting.push({ resolve, reject })),
    );
    this.socket.write(requests.length === 1 ? requests[0] : Buffer.concat(requests));
    return Promise.all(answers);
  }

  // One request; retried once on a fresh connection if the kept-alive one was gone.
  async request(method, urlPath, body, headers = {}) {
    const encoded = encodeRequest(method, urlPath, body, headers);
    try {
      return (await this.exchange([encoded]))[0];
    } catch {
      this.socket = null;
      return (await this.exchange([encoded]))[0];
    }
  }

  async next() {
    const next = await this.request("GET", NEXT_PATH);
    if (next.status !== 200) throw new Error(`runtime API /next answered ${next.status}`);
    return next;
  }

  // Posts `body` to `urlPath` and asks for the next invocation in the same write. If the
  // connection fails half-way, the two are made again one by one; a post that did land is
  // refused the second time, and, as any answer to a post, the refusal is not acted on.
  async postAndNext(urlPath, body, headers) {
    const post = encodeRequest("POST", urlPath, body, headers);
    let next;
    try {
      [, next] = await this.exchange([post, encodeRequest("GET", NEXT_PATH)]);
    } catch {
      this.socket = null;
      await this.request("POST", urlPath, body, headers);
      return this.next();
    }
    if (next.status !== 200) throw new Error(`runtime API /next answered ${next.status}`);
    return next;
  }
}

function encodeRequest(method, urlPath, body, headers = {}) {
  const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(body);
  let head = `${method} ${urlPath} HTTP/1.1\r\nHost: runtime\r\nContent-Length: ${payload.length}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  return Buffer.concat([Buffer.from(`${head}\r\n`, "latin1"), payload]);
}

// One complete response at the start of `buffer` ({ status, headers, body, length }), or null
// if more bytes are needed.
function parseResponse(buffer) {
  const headEnd = buffer.indexOf("\r\n\r\n");
  if (headEnd < 0) return null;
  const lines = buffer.toString("latin1", 0, headEnd).split("\r\n");
  const status = Number(lines[0].split(" ")[1]);
  const headers = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  let offset = headEnd + 4;
  if ((headers["transfer-encoding"] || "").toLowerCase() === "chunked") {
    const chunks = [];
    for (;;) {
      const lineEnd = buffer.indexOf("\r\n", offset);
      if (lineEnd < 0) return null;
      const size = parseInt(buffer.toString("latin1", offset, lineEnd).split(";")[0], 16);
      offset = lineEnd + 2;
      if (size === 0) {
        // Trailers, if any, end with an empty line.
        for (;;) {
          const end = buffer.indexOf("\r\n", offset);
          if (end < 0) return null;
          const empty = end === offset;
          offset = end + 2;
          if (empty) return { status, headers, body: Buffer.concat(chunks), length: offset };
        }
      }
      if (buffer.length < offset + size + 2) return null;
      chunks.push(buffer.subarray(offset, offset + size));
      offset += size + 2;
    }
  }
  const length = Number(headers["content-length"] || 0);
  if (buffer.length < offset + length) return null;
  return { status, headers, body: buffer.subarray(offset, offset + length), length: offset + length };
}

const client = new RuntimeClient(process.env.AWS_LAMBDA_RUNTIME_API || "127.0.0.1:9001");

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

// Logs `error` as AWS's runtime does and returns the post of its payload.
function errorPost(urlPath, error) {
  const payload = toErrorPayload(error);
  logError(urlPath.endsWith("/init/error") ? "Init Error" : "Invoke Error", payload);
  return [
    urlPath,
    JSON.stringify(payload),
    { "Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": payload.errorType },
  ];
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

// The post that ends an invocation: its result, or its error.
function answer(requestId, handler, event, headers) {
  return invoke(handler, event, headers).then(({ error, result }) => {
    if (error !== undefined) return errorPost(`${RUNTIME_PATH}/invocation/${requestId}/error`, error);
    let body;
    try {
      body = result === undefined ? "null" : JSON.stringify(result);
    } catch (marshal) {
      return errorPost(
        `${RUNTIME_PATH}/invocation/${requestId}/error`,
        new RuntimeError("Runtime.MarshalError", `Unable to stringify response body: ${marshal.message}`),
      );
    }
    return [`${RUNTIME_PATH}/invocation/${requestId}/response`, body, { "Content-Type": "application/json" }];
  });
}

async function main() {
  patchConsole();
  const root = process.env.LAMBDA_TASK_ROOT || "/var/task";
  let handler;
  try {
    handler = await loadHandler(root, process.env._HANDLER || "");
  } catch (error) {
    await client.request("POST", ...errorPost(`${RUNTIME_PATH}/init/error`, error));
    process.exit(1);
  }
  let next = await client.next();
  for (;;) {
    const headers = next.headers;
    const requestId = headers["lambda-runtime-aws-request-id"];
    currentRequestId = requestId;
    if (headers["lambda-runtime-trace-id"]) {
      process.env._X_AMZN_TRACE_ID = headers["lambda-runtime-trace-id"];
    } else {
      delete process.env._X_AMZN_TRACE_ID;
    }
    let post;
    let event;
    try {
      event = next.body.length ? JSON.parse(next.body.toString("utf8")) : {};
    } catch (error) {
      post = errorPost(
        `${RUNTIME_PATH}/invocation/${requestId}/error`,
        new RuntimeError("Runtime.UnmarshalError", `Unable to parse the event: ${error.message}`),
      );
    }
    if (!post) post = await answer(requestId, handler, event, headers);
    next = await client.postAndNext(...post);
  }
}

process.on("unhandledRejection", (reason) => {
  console.error("Unhandled Promise Rejection", reason);
});

main().catch((error) => {
  fs.writeSync(2, `kiln node runtime failed: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
