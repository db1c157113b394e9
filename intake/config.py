"""Configuration: one frozen, typed object read from config.toml and passed in.

Nothing reads configuration from a global; the command line loads it once and
hands it to whatever needs it. Relative paths in the file are relative to the
directory of the file itself, so `intake --config /etc/intake/config.toml`
works from any working directory.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from routing.schema import CaseType, spec_for

DEFAULT_CONFIG_NAME = "config.toml"
DEFAULT_MAX_MESSAGE_BYTES = 25 * 1024 * 1024


class ConfigError(ValueError):
    """The configuration file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Config:
    path: Path | None
    database_url: str
    support_addresses: tuple[str, ...]
    from_address: str
    from_name: str
    organisation: str
    max_message_bytes: int
    timezone: ZoneInfo
    template_dir: Path
    outgoing_maildir: Path
    departments: dict[CaseType, str] = field(default_factory=dict)

    def department_for(self, case_type: CaseType) -> str:
        """The configured department, or the schema's default for the type."""
        return self.departments.get(case_type, spec_for(case_type).department)

    @property
    def message_id_domain(self) -> str:
        return self.from_address.rpartition("@")[2] or "intake.invalid"


def find_config(explicit: str | Path | None) -> Path | None:
    """The file to read: the one given, else ./config.toml when it exists."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{path}: no such configuration file")
        return path
    default = Path.cwd() / DEFAULT_CONFIG_NAME
    return default if default.is_file() else None


def load_config(explicit: str | Path | None = None) -> Config:
    path = find_config(explicit)
    if path is None:
        return config_from_mapping({}, base=Path.cwd(), path=None)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return config_from_mapping(data, base=path.resolve().parent, path=path)


_KNOWN = {
    "intake": {"support_addresses", "from_address", "from_name", "organisation", "max_message_bytes",
               "timezone", "template_dir"},
    "database": {"url"},
    "outgoing": {"maildir"},
    "departments": None,  # keys are case types, checked below
}


def config_from_mapping(data: dict[str, Any], *, base: Path, path: Path | None) -> Config:
    where = str(path) if path else "configuration"
    _reject_unknown_keys(data, where)
    general = data.get("intake", {})
    addresses = tuple(a.strip().lower() for a in general.get("support_addresses", ["support@intake.example"]))
    if not addresses:
        raise ConfigError(f"{where}: [intake] support_addresses must list at least one address")
    return Config(
        path=path,
        database_url=_database_url(data.get("database", {}).get("url", "sqlite:///var/intake.db"), base),
        support_addresses=addresses,
        from_address=general.get("from_address", addresses[0]).strip().lower(),
        from_name=general.get("from_name", "Support"),
        organisation=general.get("organisation", "Support"),
        max_message_bytes=_positive_int(general.get("max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES),
                                        f"{where}: [intake] max_message_bytes"),
        timezone=_zone(general.get("timezone", "UTC"), where),
        template_dir=base / general.get("template_dir", "templates/email"),
        outgoing_maildir=base / data.get("outgoing", {}).get("maildir", "var/outgoing"),
        departments=_departments(data.get("departments", {}), where),
    )


def _reject_unknown_keys(data: dict[str, Any], where: str) -> None:
    for section, value in data.items():
        if section not in _KNOWN:
            raise ConfigError(f"{where}: unknown section [{section}]; known: {', '.join(sorted(_KNOWN))}")
        keys = _KNOWN[section]
        if keys is None:
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: [{section}] must be a table")
        for key in value:
            if key not in keys:
                raise ConfigError(f"{where}: unknown setting {key!r} in [{section}]; known: {', '.join(sorted(keys))}")


def _database_url(url: str, base: Path) -> str:
    """Make a relative SQLite path relative to the directory of the config file."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
        return prefix + str(base / url[len(prefix):])
    return url


def _positive_int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{what} must be a positive whole number of bytes, not {value!r}")
    return value


def _zone(name: str, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{where}: [intake] timezone {name!r} is not a known time zone") from exc


def _departments(table: dict[str, Any], where: str) -> dict[CaseType, str]:
    by_name = {t.value.lower(): t for t in CaseType}
    result: dict[CaseType, str] = {}
    for name, department in table.items():
        case_type = by_name.get(name.strip().lower())
        if case_type is None:
            raise ConfigError(f"{where}: [departments] {name!r} is not a case type; "
                              f"use one of: {', '.join(t.value for t in CaseType)}")
        if not isinstance(department, str) or not department.strip():
            raise ConfigError(f"{where}: [departments] {name!r} needs a department name")
        result[case_type] = department.strip()
    return result
