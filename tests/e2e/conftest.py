"""Fixtures: a shared Kiln server, boto3 clients and an aws CLI runner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).parent))

from kiln_harness import ACCOUNT_ID, REGION, KilnServer  # noqa: E402

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "kiln-test",
    "AWS_SECRET_ACCESS_KEY": "kiln-test",
    "AWS_DEFAULT_REGION": REGION,
}


@pytest.fixture(scope="session")
def kiln(tmp_path_factory):
    """A Kiln server shared by the whole session; tests use unique function names."""
    server = KilnServer(tmp_path_factory.mktemp("kiln") / "data").start()
    yield server
    server.stop()


def make_lambda_client(url: str):
    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="kiln-test",
        aws_secret_access_key="kiln-test",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120),
    )


@pytest.fixture
def lambda_client(kiln):
    return make_lambda_client(kiln.url)


@pytest.fixture
def function_name(request):
    """A function name no other test uses."""
    base = request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:40]
    return f"{base}-{uuid.uuid4().hex[:8]}"


class AwsCli:
    """Runs the real aws CLI (awscli from PyPI) against a Kiln server."""

    def __init__(self, url: str):
        self.url = url
        executable = shutil.which("aws", path=str(Path(sys.executable).parent))
        self.command = [executable] if executable else [sys.executable, "-m", "awscli"]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, **CREDENTIALS, "AWS_PAGER": "", "AWS_CONFIG_FILE": os.devnull}
        result = subprocess.run(
            [*self.command, "--endpoint-url", self.url, "--output", "json", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed:\n{result.stderr}")
        return result

    def json(self, *args: str):
        output = self.run(*args).stdout
        return json.loads(output) if output.strip() else None


@pytest.fixture
def aws(kiln):
    return AwsCli(kiln.url)


@pytest.fixture
def account_id():
    return ACCOUNT_ID
