"""Open the snapshot a sync asks for (a file, a configured source, or the bundled
sample) and hand it to `pipeline.sync.snapshot`. The only module that talks to sources."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from sqlalchemy import Engine, select

from pipeline.config import Config, SourceSettings
from pipeline.db.models import SourceState, table_of
from pipeline.errors import ConfigError
from pipeline.sync.rows import Kind
from pipeline.sync.snapshot import Progress, SyncRequest, SyncResult, sync_snapshot
from pipeline.sync.sources.base import Snapshot
from pipeline.sync.sources.files import read_snapshot
from pipeline.sync.sources.http import HttpFetch, HttpState, fetch_snapshot

KINDS: dict[str, Kind] = {"penalties": "penalty", "severe-list": "list"}
SAMPLE_FILES = {
    "penalties": ("penalties", "penalties.csv"),
    "severe-list": ("severe-list", "severe-list.csv"),
    "platform": ("penalties", "penalties-platform.json"),  # the 双鸭山 platform's JSON
}
"""The bundled sample's sources: name suffix → (what it holds, file)."""


@dataclass(frozen=True)
class Target:
    """What one sync loads: a configured source, or a file given on the command line."""

    source: SourceSettings
    name: str


def file_target(path: str, kind: str) -> Target:
    settings = SourceSettings(name="file", kind="file", records=kind, path=path)
    return Target(settings, "file")


def default_targets(config: Config) -> list[Target]:
    """The enabled configured sources, else the bundled sample data (quick start)."""
    sources = [s for s in config.settings.sources if s.enabled]
    if sources:
        return [Target(s, s.name) for s in sources]
    sample = config.settings.sample_data
    if not sample:
        raise ConfigError("settings.yaml: sources: no source is configured and sample_data is off")
    folder = _sample_folder(config, sample)
    return [
        Target(
            SourceSettings(name=f"sample-{name}", path=str(folder / f), records=kind),
            f"sample-{name}",
        )
        for name, (kind, f) in SAMPLE_FILES.items()
        if (folder / f).exists()
    ]


def contacts_file(config: Config) -> Path | None:
    """The contacts file the sync job imports: configured, else the sample's when on sample data."""
    if config.settings.contacts_path:
        return Path(config.settings.contacts_path)
    if config.settings.sources or not config.settings.sample_data:
        return None
    sample = _sample_folder(config, config.settings.sample_data) / "contacts.csv"
    return sample if sample.exists() else None


def _sample_folder(config: Config, sample: str) -> Path:
    here = Path(sample)
    if here.is_absolute() or here.exists():
        return here
    return config.directory.parent / sample


def run_target(
    engine: Engine,
    config: Config,
    target: Target,
    now: dt.datetime,
    force: bool,
    progress: Progress | None = None,
) -> SyncResult:
    with _open(engine, config, target.source, now) as snapshot:
        if snapshot is None:
            return SyncResult(
                reason=f"source {target.name} not modified since the last sync (HTTP 304)"
            )
        request = SyncRequest(
            snapshot,
            KINDS[target.source.records],
            target.name,
            now,
            force,
            dict(target.source.field_map),
            target.source.date_order,
        )
        return sync_snapshot(engine, config, request, progress)


@contextmanager
def _open(
    engine: Engine, config: Config, source: SourceSettings, now: dt.datetime
) -> Iterator[Snapshot | None]:
    state = _http_state(engine, source.name) if source.kind == "http" else None
    with open_source(config, source, state) as (snap, fetched):
        yield snap
    if fetched is not None and fetched.snapshot is not None:
        _save_http_state(engine, source.name, fetched.state, now)


@contextmanager
def open_source(
    config: Config, source: SourceSettings, state: HttpState | None = None
) -> Iterator[tuple[Snapshot | None, HttpFetch | None]]:
    """The source's snapshot (None: an HTTP source not modified since `state`), and for an
    HTTP source what the fetch answered (to keep its validators); nothing is written."""
    if source.kind == "file":
        assert source.path is not None
        with read_snapshot(
            Path(source.path),
            source.format,
            source.encoding,
            records_key=source.records_key,
            limits=config.settings.files.xlsx_limits(),
        ) as snap:
            yield snap, None
        return
    with requests.Session() as session:
        fetched = fetch_snapshot(
            session,
            source,
            state,
            Path(config.settings.paths.var_dir),
            limits=config.settings.files.xlsx_limits(),
        )
        if fetched.snapshot is None:
            yield None, fetched
            return
        with fetched.snapshot as snap:
            yield snap, fetched


def _http_state(engine: Engine, name: str) -> HttpState | None:
    with engine.connect() as conn:
        row = conn.execute(select(SourceState).where(SourceState.name == name)).first()
    return HttpState(row.etag, row.last_modified) if row else None


def _save_http_state(engine: Engine, name: str, state: HttpState, now: dt.datetime) -> None:
    table = table_of(SourceState)
    with engine.begin() as conn:
        conn.execute(table.delete().where(table.c.name == name))
        conn.execute(
            table.insert(),
            {
                "name": name,
                "etag": state.etag,
                "last_modified": state.last_modified,
                "checked_at": now,
            },
        )
