"""A configured HTTP source, end to end through `credit-repair sync --source`."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import CliRunner, penalty
from tests.source_server import Reply, Seen, SourceServer, json_reply, running_source


@pytest.fixture
def server() -> Iterator[SourceServer]:
    with running_source() as srv:
        yield srv


def _config(tmp_path: Path, config_dir: Path, url: str) -> Path:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    settings = (
        (config_dir / "settings.yaml")
        .read_text(encoding="utf-8")
        .replace(
            "sources: []",
            f"sources:\n  - name: province\n    kind: http\n    url: {url}\n    timeout: 0.3\n"
            "    retries: 2\n    backoff: 0.01\n    records_key: data\n    auth_header_file: "
            + str(tmp_path / "token"),
        )
    )
    (tmp_path / "token").write_text("Bearer top-secret\n", encoding="utf-8")
    (cfg / "settings.yaml").write_text(settings, encoding="utf-8")
    (cfg / "departments.yaml").write_text(
        (config_dir / "departments.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    return cfg


def test_a_500_then_a_timeout_then_html_fails_clearly_and_loads_nothing(
    server: SourceServer, tmp_path: Path, config_dir: Path, cli: CliRunner
) -> None:
    server.replies = [
        Reply(status=500),
        Reply(delay=1.0),
        Reply(body=b"<html>login</html>", content_type="text/html"),
    ]
    run = CliRunner(_config(tmp_path, config_dir, server.url))
    result = run("sync", "--source", "province", "--json")
    assert result.code == 2
    assert server.url in result.err and "text/html" in result.err
    assert "top-secret" not in result.err
    assert len(server.seen) == 3 and server.seen[0].headers["Authorization"] == "Bearer top-secret"
    assert run("ledger", "show", "--json").json_lines() == []


def test_an_unchanged_export_costs_nothing_the_second_time(
    server: SourceServer, tmp_path: Path, config_dir: Path, cli: CliRunner
) -> None:
    body = {"data": [penalty(1), penalty(2)]}

    def conditional(seen: Seen) -> Reply:
        if seen.headers.get("If-None-Match") == '"v1"':
            return Reply(status=304)
        return json_reply(body, headers={"ETag": '"v1"'})

    server.default = conditional
    run = CliRunner(_config(tmp_path, config_dir, server.url))
    first = run("sync", "--source", "province", "--json")
    assert first.code == 0 and first.json()["added"] == 2, first.err
    second = run("sync", "--source", "province", "--json")
    assert second.code == 0
    assert second.json()["rows_read"] == 0 and "not modified" in second.json()["reason"]


def test_a_source_still_failing_after_its_retries_exits_1_the_work_failed(
    server: SourceServer, tmp_path: Path, config_dir: Path, cli: CliRunner
) -> None:
    server.default = lambda seen: Reply(status=503)
    run = CliRunner(_config(tmp_path, config_dir, server.url))
    result = run("sync", "--source", "province", "--json")
    assert result.code == 1 and result.out == ""
    assert server.url in result.err and "failed 3 times; last: HTTP 503" in result.err
    assert "top-secret" not in result.err
    assert len(server.seen) == 3
    assert run("ledger", "show", "--json").json_lines() == []


def test_a_source_nobody_answers_on_exits_1(
    tmp_path: Path, config_dir: Path, cli: CliRunner
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/penalties"
    result = CliRunner(_config(tmp_path, config_dir, url))("sync", "--source", "province")
    assert result.code == 1 and "failed 3 times; last: ConnectionError" in result.err


def test_a_source_refusing_the_credentials_still_exits_2(
    server: SourceServer, tmp_path: Path, config_dir: Path, cli: CliRunner
) -> None:
    server.default = lambda seen: Reply(status=401)
    result = CliRunner(_config(tmp_path, config_dir, server.url))("sync", "--source", "province")
    assert result.code == 2 and "HTTP 401" in result.err and len(server.seen) == 1
