"""Configuration: YAML files in one folder, loaded into one typed `Config`.

=================  ==========================  ============================================
file               section (attribute)          module
=================  ==========================  ============================================
settings.yaml      `Config.settings`             `settings` (timezone, database, sources, ...)
departments.yaml   `Config.departments`          `settings` (the bureau and the departments)
rules.yaml         `Config.rules`                `rules` (rule sets, severity rules)
holidays.yaml      `Config.holidays`             `holidays` (working-day overrides)
notices.yaml       `Config.notices`              `notices` (kinds, channels, wording)
schedule.yaml      `Config.schedule`             `schedule` (runner and jobs)
=================  ==========================  ============================================

`load_config` (in `load`) reads, interpolates and validates every file once; a bad key
stops the program at start with the file and key path. Section modules import only
`base`, never `Config`.
"""

from pipeline.config.base import Strict, key_path
from pipeline.config.load import ENV_CONFIG_DIR, ENV_PREFIX, Config, config_dir, load_config
from pipeline.config.settings import (
    AuthorityRef,
    DatabaseSettings,
    Department,
    DepartmentsConfig,
    EmailSettings,
    GreenChannelSettings,
    JurisdictionSettings,
    LedgerSettings,
    LoggingSettings,
    PathSettings,
    Person,
    Settings,
    SmsSettings,
    SmsTemplate,
    SourceSettings,
    SyncSettings,
    WebSettings,
)

__all__ = [
    "ENV_CONFIG_DIR",
    "ENV_PREFIX",
    "AuthorityRef",
    "Config",
    "DatabaseSettings",
    "Department",
    "DepartmentsConfig",
    "EmailSettings",
    "GreenChannelSettings",
    "JurisdictionSettings",
    "LedgerSettings",
    "LoggingSettings",
    "PathSettings",
    "Person",
    "Settings",
    "SmsSettings",
    "SmsTemplate",
    "SourceSettings",
    "Strict",
    "SyncSettings",
    "WebSettings",
    "config_dir",
    "key_path",
    "load_config",
]
