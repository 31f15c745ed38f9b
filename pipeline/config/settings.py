"""settings.yaml (timezone, database, jurisdiction, sources, sync, channels, paths,
logging) and departments.yaml (the bureau and each penalising department)."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from pipeline.config.base import Strict
from pipeline.errors import ConfigError
from pipeline.office.archive import MIB, XlsxLimits


class DatabaseSettings(Strict):
    url: str = "sqlite:///var/credit-repair.db"
    """SQLAlchemy URL. SQLite paths are relative to the working directory."""
    busy_timeout: float = Field(600.0, gt=0)
    """SQLite: seconds a write waits for another writer (a job) to finish before it
    fails; covers the longest job (a million-row sync or evaluation takes minutes)."""


class JurisdictionSettings(Strict):
    name: str = "宝山区"
    area_codes: list[str] = Field(default_factory=lambda: ["230506"])
    """GB/T 2260 codes of the district: USCC characters 3–8 of in-scope entities."""
    authority_area_codes: list[str] | None = None
    """Area codes of authorities located in the district; default: `area_codes`."""

    @field_validator("area_codes", "authority_area_codes")
    @classmethod
    def _six_digits(cls, codes: list[str] | None) -> list[str] | None:
        for code in codes or []:
            if not re.fullmatch(r"\d{6}", code):
                raise ValueError(f"{code!r} is not a 6-digit GB/T 2260 area code")
        return codes

    def authority_codes(self) -> list[str]:
        return self.authority_area_codes or self.area_codes


class SourceSettings(Strict):
    name: str
    kind: Literal["file", "http"] = "file"
    records: Literal["penalties", "severe-list"] = "penalties"
    """What the snapshot holds."""
    path: str | None = None
    url: str | None = None
    format: Literal["auto", "csv", "xlsx", "xls", "ods", "json"] = "auto"
    encoding: str = "auto"
    """`auto` detects UTF-8 (with or without BOM) or GB18030."""
    field_map: dict[str, str] = Field(default_factory=dict)
    """Extra header → field-code mappings, e.g. {"处罚单位": "CF_CFJG"}."""
    date_order: Literal["ymd", "mdy", "dmy"] = "ymd"
    """How the source writes a date with the year last (`03/29/2018`): `ymd` (the default)
    refuses such dates, since month and day cannot be told apart; `mdy` reads them month
    first, `dmy` day first. Dates with the year first are read the same in all three."""
    auth_header: str | None = None
    """A full header line value, e.g. 'Bearer xyz' (use auth_header_file for secrets)."""
    auth_header_name: str = "Authorization"
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 1.0
    page_param: str | None = None
    """For paged JSON: the query parameter that carries the page number."""
    page_size_param: str | None = None
    page_size: int = 500
    records_key: str | None = None
    """For JSON objects: the key holding the list of records (e.g. "data")."""
    enabled: bool = True
    deadline: float = Field(300.0, gt=0)
    """HTTP: seconds one request may take in all (connecting, headers and the whole body);
    `timeout` only bounds each wait for the next bytes. Past it the try counts as failed."""
    max_body_mb: float = Field(1024.0, gt=0)
    """HTTP: the largest answer accepted, in MiB (after decompression); a bigger one is
    refused before it fills the disk (bodies are streamed to a file under paths.var_dir)."""
    allowed_redirect_origins: list[str] = Field(default_factory=list)
    """HTTP: other origins (`https://host[:port]`) a redirect may lead to. The source's
    credentials (auth_header) are never sent to them; a redirect to an origin not listed
    here is refused. Same-origin redirects are always followed."""

    @field_validator("allowed_redirect_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        out = []
        for value in values:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
                raise ValueError(f"{value!r} is not an origin like https://data.example.cn[:port]")
            out.append(origin_of(value))
        return out


def origin_of(url: str) -> str:
    """`scheme://host:port` of a URL, the port always given (80/443 by default), lower case:
    two URLs are the same origin when these are equal."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme, 0)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


class SyncSettings(Strict):
    max_vanish_share: float = Field(0.20, ge=0, le=1)
    """Refuse a snapshot that would vanish more than this share of current records."""
    batch_size: int = Field(5000, ge=100)


class FileSettings(Strict):
    """Limits on the .xlsx files the pipeline reads (snapshots, contacts, ledger imports),
    checked before a file is parsed: a workbook over any of them is refused, with the
    limit named, and nothing is read from it."""

    xlsx_max_unpacked_mb: int = Field(2048, ge=1)
    """All parts of a workbook together, unpacked (as its zip directory declares them)."""
    xlsx_max_ratio: int = Field(100, ge=2)
    """Unpacked ÷ packed size of one part over 1 MB; real workbooks stay near 10, zip
    bombs reach 1000."""
    xlsx_max_shared_strings_mb: int = Field(256, ge=1)
    """The shared-strings part, which is held in memory whole while a sheet is read."""
    xlsx_max_cells_per_row: int = Field(16384, ge=16)
    """Cells in one row (Excel's own maximum is 16,384 columns)."""
    xlsx_max_cell_chars: int = Field(32767, ge=16)
    """Characters in one cell (Excel's own maximum is 32,767)."""
    sheet_max_cells: int = Field(4_000_000, ge=1000)
    """Rows × columns of a sheet read whole into memory by the fast reader (python-calamine,
    about 80 bytes a cell): an .xls or .ods spanning more is refused before it is read, an
    .xlsx spanning more is read row by row by openpyxl instead (slower, flat memory)."""

    def xlsx_limits(self) -> XlsxLimits:
        return XlsxLimits(
            max_unpacked_bytes=self.xlsx_max_unpacked_mb * MIB,
            max_ratio=float(self.xlsx_max_ratio),
            max_shared_strings_bytes=self.xlsx_max_shared_strings_mb * MIB,
            max_cells_per_row=self.xlsx_max_cells_per_row,
            max_cell_chars=self.xlsx_max_cell_chars,
            max_sheet_cells=self.sheet_max_cells,
        )


class LedgerSettings(Strict):
    """How the ledger reads a snapshot's silence and its persistence."""

    overdue_display: bool = True
    """Keep a penalty past its removal date open while the latest snapshot still shows it
    (超期仍公示, seed 四(二)1: the company or the bureau asks the site to take it down).
    Off: every penalty past its removal date is closed as expired, shown or not."""
    grace_days: int = Field(5, ge=0)
    """Working days after the removal date before a still-shown penalty is flagged: the
    sites take a few days to take a record down."""


class Person(Strict):
    name: str = ""
    phone: str = ""
    email: str = ""


class AuthorityRef(Strict):
    name: str
    uscc: str = ""


class Department(Strict):
    code: str
    name: str
    bureau: bool = False
    """The district bureau (区营商环境局): receives unrouted records and escalations."""
    market_regulation: bool = False
    """Penalties of this department follow the market-regulation rule set (45号令)."""
    authorities: list[AuthorityRef] = Field(default_factory=list)
    contact: Person = Field(default_factory=Person)
    head: Person = Field(default_factory=Person)


class DepartmentsConfig(Strict):
    departments: list[Department]

    @field_validator("departments")
    @classmethod
    def _one_bureau(cls, deps: list[Department]) -> list[Department]:
        codes = [d.code for d in deps]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"duplicate department code(s): {', '.join(dupes)}")
        if sum(d.bureau for d in deps) != 1:
            raise ValueError("exactly one department must have `bureau: true`")
        return deps

    @property
    def bureau(self) -> Department:
        return next(d for d in self.departments if d.bureau)


class GreenChannelSettings(Strict):
    """绿色通道 / 容缺受理: records listed first and eligible for "承诺即修复"."""

    industries: list[str] = Field(default_factory=list)
    """Matched against the record's industry (行业) column."""
    keywords: list[str] = Field(default_factory=list)
    """Matched in the entity name, violation type and facts."""
    entities: list[str] = Field(default_factory=list)
    """USCCs of entities always in the green channel."""
    follow_up_days: int = Field(30, ge=1)
    """Default follow-up for a commitment (承诺) whose documents are to follow."""


class EmailSettings(Strict):
    """SMTP through yagmail. Active when `host` is set."""

    host: str | None = None
    port: int = 465
    ssl: bool = True
    """Implicit TLS (SMTPS, usually port 465)."""
    starttls: bool = False
    """Upgrade a plain connection (usually port 587); only with ssl: false."""
    user: str | None = None
    password: str | None = None
    """Use password_file or CREDIT_REPAIR_EMAIL__PASSWORD; never write it here."""
    sender: str | None = None
    """From address; default `user`."""
    sender_name: str = "宝山区营商环境局"
    timeout: float = 30.0
    verify_certificate: bool = True
    rate_per_minute: int = Field(120, ge=1)


class SmsTemplate(Strict):
    """A provider-approved template: its id and how our parameters map onto it."""

    id: str
    """Aliyun TemplateCode (SMS_123456789) or Tencent TemplateId; webhook: any label."""
    params: list[str] = Field(default_factory=list)
    """Parameter names (Aliyun: named; Tencent: this order is the positional order)."""


class SmsSettings(Strict):
    """An SMS gateway. Active when `provider` is set."""

    provider: Literal["webhook", "aliyun", "tencent"] | None = None
    url: str | None = None
    """Endpoint; default the provider's public endpoint."""
    secret: str | None = None
    """webhook: HMAC-SHA256 key for the X-Signature header."""
    access_key_id: str | None = None
    access_key_secret: str | None = None
    secret_id: str | None = None
    secret_key: str | None = None
    sdk_app_id: str | None = None
    region: str = "ap-guangzhou"
    sign_name: str = "宝山区营商环境局"
    templates: dict[str, SmsTemplate] = Field(default_factory=dict)
    timeout: float = 10.0
    quiet_hours: tuple[str, str] = ("21:00", "08:00")
    """No SMS from the first time until the second (Asia/Shanghai or the configured zone)."""
    rate_per_minute: int = Field(60, ge=1)
    daily_cap_per_number: int = Field(5, ge=1)

    @field_validator("quiet_hours")
    @classmethod
    def _hours(cls, value: tuple[str, str]) -> tuple[str, str]:
        for text in value:
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", text):
                raise ValueError(f"{text!r} is not a time of day HH:MM")
        return value


class WebSettings(Strict):
    """The company answer page (`credit-repair serve`): a personal link on every notice."""

    public_base_url: str | None = None
    """The page's public address, e.g. https://xyxf.baoshan.gov.cn; unset = no links."""
    link_days: int = Field(180, ge=1)
    """A link expires this many days after its notice (or when the record closes)."""
    secret: str | None = None
    """Signs the forms' CSRF tokens (use secret_file or CREDIT_REPAIR_WEB__SECRET); unset:
    `serve` makes one at start (forms then last until a restart)."""
    host: str = "0.0.0.0"
    port: int = Field(8080, ge=1, le=65535)
    workers: int = Field(2, ge=1, le=32)
    rate_per_ip_per_minute: int = Field(30, ge=1)
    """Requests one address may make in a minute (pages and answers)."""
    rate_per_code_per_minute: int = Field(10, ge=1)
    """Requests for one code in a minute, from anywhere."""
    trust_forwarded_for: bool = False
    """Take the client address from X-Forwarded-For (only behind a trusted reverse proxy)."""

    @field_validator("public_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError(f"{value!r} is not an http(s) address without query or fragment")
        return value.rstrip("/") if value else value


class PathSettings(Strict):
    var_dir: str = "var"
    outbox_dir: str = "var/outbox"
    reports_dir: str = "var/reports"
    templates_dir: str | None = None
    """A folder whose templates override the bundled ones, file by file."""


class LoggingSettings(Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class Settings(Strict):
    """settings.yaml."""

    timezone: str = "Asia/Shanghai"
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    jurisdiction: JurisdictionSettings = Field(default_factory=JurisdictionSettings)
    sources: list[SourceSettings] = Field(default_factory=list)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    files: FileSettings = Field(default_factory=FileSettings)
    green_channel: GreenChannelSettings = Field(default_factory=GreenChannelSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    paths: PathSettings = Field(default_factory=PathSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    contacts_path: str | None = None
    """A contacts file (CSV/XLSX) the daily sync job imports; with sample data: sample/contacts.csv."""
    sample_data: str | None = "sample"
    """Folder of bundled sample data used by the `sync` job when no source is configured."""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("sources")
    @classmethod
    def _sources(cls, sources: list[SourceSettings]) -> list[SourceSettings]:
        names = [s.name for s in sources]
        for s in sources:
            if names.count(s.name) > 1:
                raise ValueError(f"duplicate source name {s.name!r}")
            if s.kind == "file" and not s.path:
                raise ValueError(f"source {s.name!r}: kind file needs `path`")
            if s.kind == "http" and not s.url:
                raise ValueError(f"source {s.name!r}: kind http needs `url`")
        return sources

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def source(self, name: str) -> SourceSettings:
        for s in self.sources:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.sources) or "none configured"
        raise ConfigError(f"settings.yaml: sources: no source named {name!r} (known: {known})")
