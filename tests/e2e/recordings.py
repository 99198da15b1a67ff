"""Compare Kiln's responses with responses recorded from real AWS.

The recordings (`../shared/conformance/aws-recordings`, Apache-2.0 data from LocalStack's test
suite) are botocore-parsed responses with volatile values replaced by placeholders such as
`<uuid:1>`, `<function-name:1>`, `<code-sha256:1>`, `date` and the account `111111111111`.
`assert_matches` checks that a response has exactly the recorded keys at every level and equal
values wherever the recording holds a fixed value; placeholders match any value.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from kiln_harness import REPO_ROOT

RECORDINGS = Path(
    __import__("os").environ.get(
        "KILN_AWS_RECORDINGS", REPO_ROOT.parent / "shared" / "conformance" / "aws-recordings"
    )
)
PREFIX = "tests/aws/services/lambda_/"


@lru_cache(maxsize=None)
def _load(file: str) -> dict:
    return json.loads((RECORDINGS / file).read_text())


def recorded(file: str, test: str, key: str):
    """One recorded response: `file` under the recordings, `test` as `module.py::Class::test`."""
    data = _load(file)
    entry = data[PREFIX + test]["recorded-content"][key]
    return entry


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


_PLACEHOLDER = re.compile(r"<[^<>]+>")


def _string_pattern(recorded_text: str) -> re.Pattern:
    pieces = []
    position = 0
    for match in _PLACEHOLDER.finditer(recorded_text):
        pieces.append(re.escape(recorded_text[position : match.start()]))
        pieces.append(r".+?")
        position = match.end()
    pieces.append(re.escape(recorded_text[position:]))
    pattern = "".join(pieces).replace("111111111111", r"\d{12}")
    return re.compile(pattern + r"\Z", re.DOTALL)


def _compare(actual, expected, path: str, problems: list[str]) -> None:
    if isinstance(expected, str) and (expected == "date" or _PLACEHOLDER.fullmatch(expected)):
        if actual is None:
            problems.append(f"{path}: expected a value, got None")
        return
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            problems.append(f"{path}: expected an object, got {actual!r}")
            return
        missing = sorted(set(expected) - set(actual))
        extra = sorted(set(actual) - set(expected))
        if missing:
            problems.append(f"{path}: missing keys {missing}")
        if extra:
            problems.append(f"{path}: unexpected keys {extra}")
        for key in expected.keys() & actual.keys():
            _compare(actual[key], expected[key], f"{path}.{key}", problems)
        return
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            problems.append(f"{path}: expected {len(expected)} items, got {actual!r}")
            return
        for index, (a, e) in enumerate(zip(actual, expected)):
            _compare(a, e, f"{path}[{index}]", problems)
        return
    if isinstance(expected, str):
        if not isinstance(actual, str) or not _string_pattern(expected).match(actual):
            problems.append(f"{path}: expected {expected!r}, got {actual!r}")
        return
    if actual != expected:
        problems.append(f"{path}: expected {expected!r}, got {actual!r}")


def assert_matches(actual, expected, ignore: tuple[str, ...] = ()) -> None:
    """Fails with every difference between `actual` and the recording `expected`.

    `ignore` lists top-level keys to leave out of the comparison (with a reason at the call
    site), for fields Kiln deliberately reports differently.
    """
    actual = {k: v for k, v in _strip(actual).items() if k not in ignore}
    expected = {k: v for k, v in _strip(expected).items() if k not in ignore}
    problems: list[str] = []
    _compare(actual, expected, "$", problems)
    assert not problems, "response differs from AWS's:\n  " + "\n  ".join(problems)


def error_response(client_error) -> dict:
    """The botocore-parsed response of a ClientError, as the recordings store errors."""
    return dict(client_error.response)
