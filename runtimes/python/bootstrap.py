"""Kiln's bundled Python runtime: runs a Lambda handler over the Lambda Runtime API.

Standard library only, started as `python3 bootstrap.py` with the Lambda environment
(`_HANDLER`, `AWS_LAMBDA_RUNTIME_API`, `LAMBDA_TASK_ROOT`, ...). It behaves like AWS's Python
runtime interface client (awslambdaric): same context object, same error payloads and error
types (`Runtime.ImportModuleError`, `Runtime.HandlerNotFound`, `Runtime.UserCodeSyntaxError`,
...), same `[LEVEL]\\ttimestamp\\trequestId\\tmessage` log lines.

Start-up time is the cold start, so imports are kept to what every invocation needs: HTTP/1.1
is spoken over the C socket module directly (`http.client` and its `email` imports, even
`socket.py` and the `idna` codec that name resolution pulls in, cost more than the rest), and
`logging` is configured when the function imports it rather than imported up front.
"""

import _socket
import importlib
import json
import os
import sys
import time

RUNTIME_PATH = "/2018-06-01/runtime"


class RuntimeApiClient:
    """A keep-alive HTTP/1.1 client for the Runtime API, just enough for its three calls."""

    def __init__(self, address):
        host, _, port = address.rpartition(":")
        self.address = (host or "127.0.0.1", int(port))
        self.sock = None
        self.buffer = b""

    def _connect(self):
        host, port = self.address
        try:
            _socket.inet_aton(host)
        except OSError:
            # A name, not an address: resolve it (Kiln always gives an address).
            host = _socket.getaddrinfo(host, port, _socket.AF_INET, _socket.SOCK_STREAM)[0][4][0]
        sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        try:
            sock.connect((host, port))
        except OSError:
            sock.close()
            raise
        sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        self.sock = sock
        self.buffer = b""

    def request(self, method, path, body=b"", headers=None):
        for attempt in (1, 2):
            if self.sock is None:
                self._connect()
            try:
                return self._exchange(method, path, body, headers or {})
            except (ConnectionError, OSError):
                self.sock = None
                if attempt == 2:
                    raise
        raise ConnectionError("unreachable")

    def _exchange(self, method, path, body, headers):
        self.sock.sendall(encode_request(method, path, body, headers))
        return self._receive()

    def _receive(self):
        status_line, response_headers = self._read_head()
        status = int(status_line.split(b" ", 2)[1])
        if response_headers.get("transfer-encoding", "").lower() == "chunked":
            payload = self._read_chunked()
        else:
            payload = self._read_exact(int(response_headers.get("content-length", "0")))
        if response_headers.get("connection", "").lower() == "close":
            self.sock.close()
            self.sock = None
        return status, response_headers, payload

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("runtime API closed the connection")
        self.buffer += data

    def _read_head(self):
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        return lines[0], headers

    def _read_exact(self, length):
        while len(self.buffer) < length:
            self._fill()
        data, self.buffer = self.buffer[:length], self.buffer[length:]
        return data

    def _read_line(self):
        while b"\r\n" not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _read_chunked(self):
        chunks = []
        while True:
            size = int(self._read_line().split(b";")[0], 16)
            if size == 0:
                while self._read_line():
                    pass
                return b"".join(chunks)
            chunks.append(self._read_exact(size))
            self._read_exact(2)

    def next_invocation(self):
        status, headers, body = self.request("GET", RUNTIME_PATH + "/invocation/next")
        if status != 200:
            raise RuntimeError(f"runtime API /next answered {status}: {body[:200]!r}")
        return headers, body

    def respond_and_next(self, request_id, body):
        """Posts a response, then returns the next invocation."""
        path = f"{RUNTIME_PATH}/invocation/{request_id}/response"
        return self._post_and_next(path, body, {"Content-Type": "application/json"})

    def fail_and_next(self, request_id, error):
        """Posts an invocation's error, then returns the next invocation."""
        path = f"{RUNTIME_PATH}/invocation/{request_id}/error"
        return self._post_and_next(path, *error_request(error))

    def post_init_error(self, error):
        self.request("POST", f"{RUNTIME_PATH}/init/error", *error_request(error))

    def _post_and_next(self, path, body, headers):
        """One write for both requests (HTTP/1.1 pipelining): a system call and a wake-up fewer
        on each side per invocation. If the connection fails half-way, the two are made again
        one by one; a post that did land is refused the second time, and, as any answer to a
        post, the refusal is not acted on."""
        requests = encode_request("POST", path, body, headers)
        requests += encode_request("GET", RUNTIME_PATH + "/invocation/next", b"", {})
        try:
            if self.sock is None:
                self._connect()
            self.sock.sendall(requests)
            self._receive()
            if self.sock is None:
                raise ConnectionError("runtime API closed the connection after the post")
            status, next_headers, payload = self._receive()
        except (ConnectionError, OSError):
            self.sock = None
            self.request("POST", path, body, headers)
            return self.next_invocation()
        if status != 200:
            raise RuntimeError(f"runtime API /next answered {status}: {payload[:200]!r}")
        return next_headers, payload


def error_request(error):
    """The body and headers of a post of `error` (Lambda's error payload)."""
    headers = {
        "Content-Type": "application/json",
        "Lambda-Runtime-Function-Error-Type": error.get("errorType", "Runtime.Unknown"),
    }
    return json.dumps(error).encode(), headers


def encode_request(method, path, body, headers):
    head = [f"{method} {path} HTTP/1.1", "Host: runtime", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class FaultError(Exception):
    """A runtime-level failure with Lambda's error type."""

    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    MARSHAL_ERROR = "Runtime.MarshalError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"

    def __init__(self, error_type, message, trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, identity_id=None, pool_id=None):
        self.cognito_identity_id = identity_id
        self.cognito_identity_pool_id = pool_id

    def __repr__(self):
        return (
            f"CognitoIdentity([cognito_identity_id={self.cognito_identity_id},"
            f"cognito_identity_pool_id={self.cognito_identity_pool_id}])"
        )


class Client:
    __slots__ = ("installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name")

    def __init__(self, client):
        self.installation_id = client.get("installation_id")
        self.app_title = client.get("app_title")
        self.app_version_name = client.get("app_version_name")
        self.app_version_code = client.get("app_version_code")
        self.app_package_name = client.get("app_package_name")


class ClientContext:
    __slots__ = ("custom", "env", "client")

    def __init__(self, context):
        self.custom = context.get("custom")
        self.env = context.get("env")
        client = context.get("client")
        self.client = Client(client) if client is not None else None


class LambdaContext:
    """The `context` argument, with awslambdaric's attributes."""

    def __init__(self, headers):
        self.aws_request_id = headers.get("lambda-runtime-aws-request-id")
        self.invoked_function_arn = headers.get("lambda-runtime-invoked-function-arn")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.tenant_id = headers.get("lambda-runtime-aws-tenant-id")
        self._deadline_ms = int(headers.get("lambda-runtime-deadline-ms", "0"))
        identity = headers.get("lambda-runtime-cognito-identity")
        if identity:
            parsed = json.loads(identity)
            self.identity = CognitoIdentity(
                parsed.get("cognitoIdentityId"), parsed.get("cognitoIdentityPoolId")
            )
        else:
            self.identity = CognitoIdentity()
        client_context = headers.get("lambda-runtime-client-context")
        self.client_context = ClientContext(json.loads(client_context)) if client_context else None

    def get_remaining_time_in_millis(self):
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def __repr__(self):
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},"
            f"client_context={self.client_context},identity={self.identity}])"
        )


CURRENT_REQUEST_ID = [""]


def configure_logging(logging):
    """The root logger writes `[LEVEL]\\ttimestamp\\trequestId\\tmessage`, as on Lambda."""

    class LambdaFormatter(logging.Formatter):
        def format(self, record):
            record.aws_request_id = CURRENT_REQUEST_ID[0]
            return super().format(record)

    formatter = LambdaFormatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
        "%Y-%m-%dT%H:%M:%S",
    )
    formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
    if level:
        root.setLevel(level.upper())


class ConfigureLoggingOnImport:
    """A meta path finder that configures `logging` right after the function first imports it.

    Importing `logging` costs several milliseconds of cold start; functions that never log do
    not pay it, and functions that do find it configured as on Lambda, wherever they import it.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "logging":
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        spec.loader = ConfiguringLoader(spec.loader)
        return spec


class ConfiguringLoader:
    """Loads `logging` with its own loader, then configures it."""

    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):
        # get_source (for tracebacks), is_package, ...: the real loader's.
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        configure_logging(module)


def install_logging():
    if "logging" in sys.modules:
        configure_logging(sys.modules["logging"])
    else:
        sys.meta_path.insert(0, ConfigureLoggingOnImport())


def load_handler(handler):
    """Imports the handler function named `module.function` (the module may be a path)."""
    try:
        module_name, function_name = handler.rsplit(".", 1)
    except ValueError as error:
        raise FaultError(
            FaultError.MALFORMED_HANDLER_NAME, f"Bad handler '{handler}': {error}"
        ) from None
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise FaultError(
            FaultError.BUILT_IN_MODULE_CONFLICT,
            f"Cannot use built-in module {module_name} as a handler module",
        )
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as error:
        raise FaultError(
            FaultError.IMPORT_MODULE_ERROR, f"Unable to import module '{module_name}': {error}"
        ) from None
    except SyntaxError as error:
        trace = [f'  File "{error.filename}" Line {error.lineno}\n    {error.text}']
        raise FaultError(
            FaultError.USER_CODE_SYNTAX_ERROR,
            f"Syntax error in module '{module_name}': {error}",
            trace,
        ) from None
    try:
        return getattr(module, function_name)
    except AttributeError:
        fault = FaultError(
            FaultError.HANDLER_NOT_FOUND,
            f"Handler '{function_name}' missing on module '{module_name}'",
        )

        def missing_handler(event, context):
            raise fault

        return missing_handler


def error_payload(error, request_id):
    """The JSON body Lambda reports for an exception, and logs as `[ERROR]`."""
    import traceback

    if isinstance(error, FaultError):
        error_type, message, trace = error.error_type, error.message, error.trace
    else:
        error_type = type(error).__name__
        message = str(error)
        frames = traceback.extract_tb(error.__traceback__)
        # Leave out this runtime's own frames and the import machinery, as awslambdaric does.
        frames = [
            frame
            for frame in frames
            if not frame.filename.endswith("bootstrap.py") and not frame.filename.startswith("<frozen")
        ]
        trace = traceback.format_list(frames)
    payload = {"errorMessage": message, "errorType": error_type, "requestId": request_id}
    payload["stackTrace"] = trace
    log_lines = [f"[ERROR] {error_type}: {message}"]
    if trace:
        log_lines.append("Traceback (most recent call last):")
        log_lines.extend(line.rstrip("\n") for line in trace)
    sys.stdout.write("\r".join(log_lines) + "\n")
    return payload


def main():
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    task_root = os.environ.get("LAMBDA_TASK_ROOT", "/var/task")
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    # Lambda's import order: the function's code, then layers, then the runtime.
    for path in reversed([task_root, f"/opt/python/lib/{version}/site-packages", "/opt/python"]):
        if path not in sys.path:
            sys.path.insert(0, path)
    os.chdir(task_root)
    client = RuntimeApiClient(os.environ["AWS_LAMBDA_RUNTIME_API"])
    install_logging()
    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except Exception as error:  # noqa: BLE001 - any failure while importing is an init error
        client.post_init_error(error_payload(error, ""))
        sys.exit(1)

    headers, body = client.next_invocation()
    while True:
        request_id = headers.get("lambda-runtime-aws-request-id", "")
        CURRENT_REQUEST_ID[0] = request_id
        trace_id = headers.get("lambda-runtime-trace-id")
        if trace_id:
            os.environ["_X_AMZN_TRACE_ID"] = trace_id
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        try:
            try:
                event = json.loads(body) if body else {}
            except ValueError as error:
                raise FaultError(
                    FaultError.UNMARSHAL_ERROR, f"Unable to unmarshal input: {error}"
                ) from None
            result = handler(event, LambdaContext(headers))
            try:
                payload = json.dumps(result).encode()
            except (TypeError, ValueError) as error:
                raise FaultError(
                    FaultError.MARSHAL_ERROR, f"Unable to marshal response: {error}"
                ) from None
        except Exception as error:  # noqa: BLE001 - every failure is the function's error
            headers, body = client.fail_and_next(request_id, error_payload(error, request_id))
            continue
        headers, body = client.respond_and_next(request_id, payload)


if __name__ == "__main__":
    main()
