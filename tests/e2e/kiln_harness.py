"""Start, stop and kill real `kiln serve` processes for end-to-end tests."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_ID = "000000000000"
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/kiln-test-role"


def kiln_binary() -> Path:
    """The binary under test: $KILN_BIN, else the workspace's debug build."""
    configured = os.environ.get("KILN_BIN")
    path = Path(configured) if configured else REPO_ROOT / "target" / "debug" / "kiln"
    if not path.exists():
        raise RuntimeError(f"kiln binary not found at {path}; run `cargo build` first")
    return path


class KilnServer:
    """One `kiln serve` on an ephemeral port with its own data directory."""

    def __init__(self, data_dir: Path, *extra_args: str):
        self.data_dir = Path(data_dir)
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen | None = None
        self.url: str | None = None
        # The SQS endpoint's URL; every server gets its own port unless the test chose one.
        self.sqs_url: str | None = None
        self.sqs_listen = "127.0.0.1:0"
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"

    def start(self, listen: str = "127.0.0.1:0") -> "KilnServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        sqs_args = [] if "--sqs-listen" in self.extra_args else ["--sqs-listen", self.sqs_listen]
        self.process = subprocess.Popen(
            [
                str(kiln_binary()),
                "serve",
                "--listen",
                listen,
                "--data-dir",
                str(self.data_dir),
                *sqs_args,
                *self.extra_args,
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, "KILN_LOG": os.environ.get("KILN_LOG", "info")},
        )
        log.close()
        line = self.process.stdout.readline().decode()
        if not line.startswith("Kiln listening on "):
            self.process.kill()
            raise RuntimeError(
                f"kiln did not start: {line!r}\n{self.log_path.read_text(errors='replace')}"
            )
        self.url = line.split("Kiln listening on ", 1)[1].strip()
        if "off" not in (sqs_args or self.extra_args):
            sqs_line = self.process.stdout.readline().decode()
            if not sqs_line.startswith("Kiln SQS listening on "):
                self.process.kill()
                raise RuntimeError(f"kiln did not announce its SQS endpoint: {sqs_line!r}")
            self.sqs_url = sqs_line.split("Kiln SQS listening on ", 1)[1].strip()
            # A restart keeps the same SQS port, so queue URLs stay valid.
            self.sqs_listen = self.sqs_url.removeprefix("http://")
        self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/_kiln/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.02)

    @property
    def address(self) -> str:
        return self.url.removeprefix("http://")

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait: the clean shutdown path."""
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self.process = None
        return code

    def kill9(self) -> None:
        """SIGKILL: no chance to flush or clean up."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> "KilnServer":
        """Starts again on the same port and data directory."""
        return self.start(listen=self.address)


def make_zip(files: dict[str, str | bytes], modes: dict[str, int] | None = None) -> bytes:
    """A zip with the given files (name -> content); `modes` sets unix permissions."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = (modes or {}).get(name, 0o644)
            info.external_attr = (0o100000 | mode) << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def aws_clients(server: KilnServer, config=None):
    """boto3 Lambda and SQS clients for `server` (`config`: a botocore `Config`)."""
    import boto3

    common = {
        "region_name": REGION,
        "aws_access_key_id": "kiln-test",
        "aws_secret_access_key": "kiln-test",
    }
    if config is not None:
        common["config"] = config
    return (
        boto3.client("lambda", endpoint_url=server.url, **common),
        boto3.client("sqs", endpoint_url=server.sqs_url, **common),
    )


def make_queue(sqs, name: str, **attributes) -> tuple[str, str]:
    """Creates a queue of Kiln's; returns its URL and ARN."""
    url = sqs.create_queue(
        QueueName=name, Attributes={k: str(v) for k, v in attributes.items()}
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def scrape_metrics(server: KilnServer) -> tuple[str, dict[str, float]]:
    """`GET /metrics`: the text, and every sample by its name with labels."""
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return text, samples


PYTHON_HANDLER_ZIP = make_zip({"handler.py": "def handler(event, context):\n    return event\n"})
