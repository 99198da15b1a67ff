"""A function run by awslambdaric (PyPI) as a custom runtime, deployed by
tests/e2e/test_real_runtimes.py. The event's "action" picks the behaviour."""

import logging
import os
import sys
import time
import uuid

# Module state: survives between invocations of one execution environment.
TOKEN = uuid.uuid4().hex
COUNT = 0
print(f"python-ric init token={TOKEN}")

ENV_NAMES = [
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
]


def handler(event, context):
    global COUNT
    COUNT += 1
    action = event.get("action", "echo") if isinstance(event, dict) else "echo"
    print(f"python-ric action={action} request={context.aws_request_id}")
    print("python-ric stderr line", file=sys.stderr)
    logging.getLogger().warning("python-ric logger line")
    if action == "echo":
        return {"runtime": "python", "echo": event}
    if action == "error":
        raise ValueError(f"python handler failed on purpose: {event.get('message')}")
    if action == "env":
        custom = context.client_context.custom if context.client_context else None
        return {
            "env": {name: os.environ.get(name) for name in ENV_NAMES},
            "cwd": os.getcwd(),
            "uid": os.getuid(),
            "context": {
                "request_id": context.aws_request_id,
                "remaining_ms": context.get_remaining_time_in_millis(),
                "invoked_function_arn": context.invoked_function_arn,
                "function_name": context.function_name,
                "memory": context.memory_limit_in_mb,
                "version": context.function_version,
                "log_group": context.log_group_name,
                "log_stream": context.log_stream_name,
                "client_context_custom": custom,
            },
        }
    if action == "sleep":
        ms = event.get("ms", 1000)
        time.sleep(ms / 1000)
        return {"slept_ms": ms, "token": TOKEN}
    if action == "alloc":
        # 1 MiB at a time, every page written, so the cgroup sees real usage.
        blocks = [bytearray(b"\x01") * (1 << 20) for _ in range(event.get("mb", 300))]
        return {"allocated_mb": len(blocks)}
    if action == "crash":
        print(f"python-ric exiting with {event.get('code', 3)}", flush=True)
        os._exit(event.get("code", 3))
    if action == "count":
        return {"count": COUNT, "token": TOKEN}
    if action == "tmp":
        with open("/tmp/python-ric.txt", "a") as file:
            file.write(context.aws_request_id + "\n")
        with open("/tmp/python-ric.txt") as file:
            lines = len(file.read().splitlines())
        return {"lines": lines, "count": COUNT, "token": TOKEN}
    raise KeyError(f"unknown action {action!r}")
