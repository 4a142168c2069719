"""Settings: shipped defaults, the site file, then ``YIWANG_*`` environment variables.

Precedence (later wins): ``config/yiwang.toml`` (shipped defaults) → ``<home>/site.toml`` (written
by ``yiwang init``; another file with ``YIWANG_SITE``) → environment. ``<home>`` is ``YIWANG_HOME``
or ``./var``. Settings are an immutable value passed to ``create_app``; nothing reads globals.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yiwang.errors import SettingsError

#: Environment variables that name a key directly (documented in config/yiwang.toml).
ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "YIWANG_DATABASE_URL": ("database", "url"),
    "YIWANG_SECRET_KEY": ("security", "secret_key"),
    "YIWANG_PLUGINS": ("plugins", "enabled"),
    "YIWANG_THEME": ("site", "theme"),
    "YIWANG_DEBUG": ("site", "debug"),
}
#: Variables that are not settings keys.
ENV_RESERVED = {"YIWANG_HOME", "YIWANG_SITE"}


def package_root() -> Path:
    return Path(__file__).resolve().parent


def _bundled(name: str) -> Path:
    """A folder shipped in the wheel as ``yiwang/_<name>``, or the checkout's ``<name>/``."""
    packaged = package_root() / f"_{name}"
    if packaged.is_dir():
        return packaged
    return package_root().parent.parent / name


def config_dir() -> Path:
    return _bundled("config")


def themes_dir() -> Path:
    return _bundled("themes")


@dataclass(frozen=True)
class CodeRange:
    low: int
    high: int
    kind: str


@dataclass(frozen=True)
class GridCodeRules:
    """How codes below the county are numbered (see ``[grid.codes]``)."""

    township: tuple[CodeRange, ...]
    community: tuple[CodeRange, ...]
    grid_digits: tuple[int, ...]
    unit_digits: tuple[int, ...]


@dataclass(frozen=True)
class AuthSettings:
    """Identity policy (``[auth]``)."""

    password_min_length: int
    password_min_classes: int
    password_max_age_days: int
    password_blocklist: tuple[str, ...]
    lockout_threshold: int
    lockout_minutes: int
    ip_failures_per_minute: int
    session_idle_minutes: int
    session_absolute_hours: int
    cookie_secure: str
    totp_required_roles: tuple[str, ...]
    access_token_minutes: int
    refresh_token_days: int


def _auth(raw: Mapping[str, Any]) -> AuthSettings:
    secure = _get(raw, "auth.cookie_secure", str)
    if secure not in ("auto", "always", "never"):
        raise SettingsError(f"配置项 auth.cookie_secure 应为 auto/always/never，实际为 {secure!r}")
    lists = {}
    for key in ("password_blocklist", "totp_required_roles"):
        value = _get(raw, f"auth.{key}", list)
        if not all(isinstance(v, str) for v in value):
            raise SettingsError(f"配置项 auth.{key} 应为字符串列表")
        lists[key] = tuple(value)
    min_classes = _positive(raw, "auth.password_min_classes")
    if min_classes > 4:
        raise SettingsError("配置项 auth.password_min_classes 最大为 4")
    return AuthSettings(
        password_min_length=_positive(raw, "auth.password_min_length"),
        password_min_classes=min_classes,
        password_max_age_days=_get(raw, "auth.password_max_age_days", int),
        password_blocklist=lists["password_blocklist"],
        lockout_threshold=_positive(raw, "auth.lockout_threshold"),
        lockout_minutes=_positive(raw, "auth.lockout_minutes"),
        ip_failures_per_minute=_positive(raw, "auth.ip_failures_per_minute"),
        session_idle_minutes=_positive(raw, "auth.session_idle_minutes"),
        session_absolute_hours=_positive(raw, "auth.session_absolute_hours"),
        cookie_secure=secure,
        totp_required_roles=lists["totp_required_roles"],
        access_token_minutes=_positive(raw, "auth.access_token_minutes"),
        refresh_token_days=_positive(raw, "auth.refresh_token_days"),
    )


@dataclass(frozen=True)
class SmtpSettings:
    """The mail server of the ``smtp`` notification driver (``[notify.smtp]``)."""

    host: str
    port: int
    starttls: bool
    ssl: bool
    user: str
    password: str = field(repr=False)
    sender: str = ""
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class SmsHttpSettings:
    """The SMS gateway of the ``sms_http`` notification driver (``[notify.sms_http]``)."""

    url: str
    token: str = field(repr=False)
    template: str = ""
    timeout_seconds: float = 5.0


@dataclass(frozen=True)
class NotifySettings:
    """Notifications (``[notify]``, docs/notifications.md)."""

    channels: tuple[str, ...]
    deliver_on_commit: bool
    max_attempts: int
    backoff_seconds: int
    backoff_max_seconds: int
    lease_seconds: int
    base_url: str
    smtp: SmtpSettings
    sms_http: SmsHttpSettings


def _notify(raw: Mapping[str, Any]) -> NotifySettings:
    channels = _get(raw, "notify.channels", list)
    if not all(isinstance(c, str) and c for c in channels):
        raise SettingsError(f"配置项 notify.channels 应为通道名列表: {channels!r}")
    from yiwang.notify.drivers import installed_drivers

    installed = installed_drivers()
    unknown = [c for c in channels if c not in installed]
    if unknown:
        raise SettingsError(
            f"配置项 notify.channels 中有未安装的通知通道: {', '.join(unknown)}"
            f"（已安装: {', '.join(sorted(installed)) or '无'}）"
        )
    smtp = SmtpSettings(
        host=_get(raw, "notify.smtp.host", str).strip(),
        port=_get(raw, "notify.smtp.port", int),
        starttls=_get(raw, "notify.smtp.starttls", bool),
        ssl=_get(raw, "notify.smtp.ssl", bool),
        user=_get(raw, "notify.smtp.user", str),
        password=_get(raw, "notify.smtp.password", str),
        sender=_get(raw, "notify.smtp.from", str).strip(),
        timeout_seconds=_get(raw, "notify.smtp.timeout_seconds", float),
    )
    sms = SmsHttpSettings(
        url=_get(raw, "notify.sms_http.url", str).strip(),
        token=_get(raw, "notify.sms_http.token", str),
        template=_get(raw, "notify.sms_http.template", str),
        timeout_seconds=_get(raw, "notify.sms_http.timeout_seconds", float),
    )
    if "smtp" in channels and not (smtp.host and smtp.sender):
        raise SettingsError("启用了邮件通知（smtp），请设置 notify.smtp.host 与 notify.smtp.from")
    if smtp.starttls and smtp.ssl:
        raise SettingsError("notify.smtp.starttls 与 notify.smtp.ssl 只能启用其一")
    if "sms_http" in channels and not sms.url.startswith(("http://", "https://")):
        raise SettingsError("启用了短信通知（sms_http），请将 notify.sms_http.url 设为 http(s) 地址")
    backoff = _positive(raw, "notify.backoff_seconds")
    return NotifySettings(
        channels=tuple(dict.fromkeys(channels)),
        deliver_on_commit=_get(raw, "notify.deliver_on_commit", bool),
        max_attempts=_positive(raw, "notify.max_attempts"),
        backoff_seconds=backoff,
        backoff_max_seconds=max(backoff, _positive(raw, "notify.backoff_max_seconds")),
        lease_seconds=_positive(raw, "notify.lease_seconds"),
        base_url=_get(raw, "notify.base_url", str).strip().rstrip("/"),
        smtp=smtp,
        sms_http=sms,
    )


#: The file types ``yiwang.files`` can check (``yiwang.files.types.TYPES``), by kind.
FILE_KINDS: dict[str, tuple[str, ...]] = {
    "image": ("jpeg", "png", "webp"),
    "document": ("pdf", "docx", "xlsx"),
    "audio": ("mp3", "amr", "m4a"),
    "video": ("mp4",),
}


@dataclass(frozen=True)
class FilesSettings:
    """Stored files (``[files]``, docs/files.md)."""

    path: Path
    #: Largest accepted upload per kind (image, document, audio, video), in MB.
    max_mb: Mapping[str, float]
    #: Accepted types: a subset of ``FILE_KINDS``' names.
    allowed: frozenset[str]

    def max_bytes(self, kind: str) -> int:
        return int(self.max_mb[kind] * 1024 * 1024)


def _files(raw: Mapping[str, Any], home: Path) -> FilesSettings:
    max_mb: dict[str, float] = {}
    for kind in FILE_KINDS:
        value = _get(raw, f"files.max_mb.{kind}", float)
        if value <= 0:
            raise SettingsError(f"配置项 files.max_mb.{kind} 应为正数，实际为 {value}")
        max_mb[kind] = value
    allowed = _get(raw, "files.allowed", list)
    known = {name for names in FILE_KINDS.values() for name in names}
    unknown = [a for a in allowed if not isinstance(a, str) or a not in known]
    if unknown:
        raise SettingsError(
            f"配置项 files.allowed 中有无法检查的类型: {unknown!r}（可选: {', '.join(sorted(known))}）"
        )
    return FilesSettings(
        path=_path_or(raw, "files.path", home / "files"), max_mb=max_mb, allowed=frozenset(allowed)
    )



@dataclass(frozen=True)
class JobSettings:
    """Periodic jobs (``[jobs]``, docs/jobs.md)."""

    run_in_app: bool
    tick_seconds: float
    lease_seconds: int


def _jobs(raw: Mapping[str, Any]) -> JobSettings:
    tick = _get(raw, "jobs.tick_seconds", float)
    if tick <= 0:
        raise SettingsError(f"配置项 jobs.tick_seconds 应为正数，实际为 {tick}")
    return JobSettings(
        run_in_app=_get(raw, "jobs.run_in_app", bool),
        tick_seconds=tick,
        lease_seconds=_positive(raw, "jobs.lease_seconds"),
    )


@dataclass(frozen=True)
class UiSettings:
    """The staff web UI (``[ui]``, docs/themes.md)."""

    badge_refresh_seconds: float


def _ui(raw: Mapping[str, Any]) -> UiSettings:
    every = _get(raw, "ui.badge_refresh_seconds", float)
    if every <= 0:
        raise SettingsError(f"配置项 ui.badge_refresh_seconds 应为正数，实际为 {every}")
    return UiSettings(badge_refresh_seconds=every)


@dataclass(frozen=True)
class MapSettings:
    """The grid map (``[map]``, docs/grid.md): an optional tile basemap and the pin limit."""

    tile_url: str = ""
    attribution: str = ""
    #: "wgs84", or "gcj02" when the tiles are drawn in GCJ-02 (火星坐标): shapes and pins shift.
    tile_crs: str = "wgs84"
    max_pins: int = 5000


def _map(raw: Mapping[str, Any]) -> MapSettings:
    url = _get(raw, "map.tile_url", str).strip()
    if url and not (url.startswith(("http://", "https://", "/")) and "{z}" in url and "{x}" in url and "{y}" in url):
        raise SettingsError(
            f"配置项 map.tile_url 应为含 {{z}}、{{x}}、{{y}} 的瓦片地址（http(s):// 或 / 开头），实际为 {url!r}"
        )
    crs = _get(raw, "map.tile_crs", str).strip().lower()
    if crs not in ("wgs84", "gcj02"):
        raise SettingsError(f"配置项 map.tile_crs 应为 wgs84 或 gcj02，实际为 {crs!r}")
    return MapSettings(
        tile_url=url,
        attribution=_get(raw, "map.attribution", str).strip(),
        tile_crs=crs,
        max_pins=_positive(raw, "map.max_pins"),
    )


@dataclass(frozen=True)
class Settings:
    home: Path
    site_file: Path
    site_name: str
    theme: str
    themes_path: Path
    debug: bool
    locale: str
    host: str
    port: int
    threads: int
    database_url: str
    busy_timeout_ms: int
    pool_size: int
    echo_sql: bool
    secret_key: str
    data_key_file: Path
    audit_key_file: Path
    audit_retention_days: int
    audit_checkpoint_every: int
    audit_checkpoint_log: Path
    auth: AuthSettings
    plugins_enabled: tuple[str, ...]
    activation_refresh_seconds: float
    grid_codes: GridCodeRules
    notify: NotifySettings
    files: FilesSettings
    jobs: JobSettings
    ui: UiSettings
    map: MapSettings = field(default_factory=MapSettings)
    #: The merged raw tables, for plugin settings under ``[plugin.<name>]``.
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)

    def plugin_settings(self, name: str) -> Mapping[str, Any]:
        section = self.raw.get("plugin", {})
        value = section.get(name, {}) if isinstance(section, dict) else {}
        return value if isinstance(value, dict) else {}


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(f"配置文件不存在: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"配置文件格式错误 {path}: {exc}") from None


def merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith("YIWANG_") or name in ENV_RESERVED:
            continue
        if name in ENV_ALIASES:
            keys = ENV_ALIASES[name]
            value: Any = raw
            if name == "YIWANG_PLUGINS":
                value = [p.strip() for p in raw.split(",") if p.strip()]
            elif name == "YIWANG_DEBUG":
                value = _env_value(raw.lower())
        elif "__" in name:
            keys = tuple(k.lower() for k in name[len("YIWANG_") :].split("__"))
            value = _env_value(raw)
        else:
            continue  # unrelated YIWANG_ variables (e.g. test-kit ones) are not settings
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return out


def _get(raw: Mapping[str, Any], dotted: str, kind: type | tuple[type, ...]) -> Any:
    node: Any = raw
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            raise SettingsError(f"缺少配置项 {dotted}")
        node = node[key]
    if kind is float and isinstance(node, int) and not isinstance(node, bool):
        node = float(node)
    if not isinstance(node, kind) or (kind in (int, float) and isinstance(node, bool)):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise SettingsError(f"配置项 {dotted} 应为 {names}，实际为 {node!r}")
    return node


def _ranges(raw: Mapping[str, Any], dotted: str) -> tuple[CodeRange, ...]:
    value = _get(raw, dotted, list)
    out = []
    for item in value:
        if (
            not isinstance(item, list)
            or len(item) != 3
            or not all(isinstance(x, int) for x in item[:2])
            or not isinstance(item[2], str)
            or not 0 < item[0] <= item[1] <= 999
        ):
            raise SettingsError(f"配置项 {dotted} 的每一项应为 [起, 止, 类别]，如 [1, 99, \"街道\"]: {item!r}")
        out.append(CodeRange(item[0], item[1], item[2]))
    return tuple(out)


def _digits(raw: Mapping[str, Any], dotted: str) -> tuple[int, ...]:
    value = _get(raw, dotted, list)
    if not value or not all(isinstance(d, int) and 1 <= d <= 4 for d in value):
        raise SettingsError(f"配置项 {dotted} 应为 1–4 之间的位数列表: {value!r}")
    return tuple(sorted(set(value)))


def _path_or(raw: Mapping[str, Any], dotted: str, default: Path) -> Path:
    value = _get(raw, dotted, str).strip()
    return Path(value).resolve() if value else default


def _positive(raw: Mapping[str, Any], dotted: str) -> int:
    value = _get(raw, dotted, int)
    if value <= 0:
        raise SettingsError(f"配置项 {dotted} 应为正整数，实际为 {value}")
    return int(value)


def build(raw: Mapping[str, Any], *, home: Path, site_file: Path) -> Settings:
    """Validate merged tables into Settings; every problem names its key."""
    db_url = _get(raw, "database.url", str).strip()
    if not db_url:
        db_url = f"sqlite:///{(home / 'yiwang.db').resolve()}"
    enabled = _get(raw, "plugins.enabled", list)
    if not all(isinstance(p, str) and p for p in enabled):
        raise SettingsError(f"配置项 plugins.enabled 应为插件名列表: {enabled!r}")
    port = _get(raw, "server.port", int)
    if not 0 < port < 65536:
        raise SettingsError(f"配置项 server.port 超出范围: {port}")
    theme_path = _get(raw, "site.themes_path", str)
    return Settings(
        home=home,
        site_file=site_file,
        site_name=_get(raw, "site.name", str),
        theme=_get(raw, "site.theme", str),
        themes_path=Path(theme_path).resolve() if theme_path else themes_dir(),
        debug=_get(raw, "site.debug", bool),
        locale=_get(raw, "site.locale", str),
        host=_get(raw, "server.host", str),
        port=port,
        threads=_positive(raw, "server.threads"),
        database_url=db_url,
        busy_timeout_ms=_get(raw, "database.busy_timeout_ms", int),
        pool_size=_get(raw, "database.pool_size", int),
        echo_sql=_get(raw, "database.echo", bool),
        secret_key=_get(raw, "security.secret_key", str),
        data_key_file=_path_or(raw, "security.data_key_file", home / "keys" / "data.key"),
        audit_key_file=_path_or(raw, "security.audit_key_file", home / "keys" / "audit-signing.key"),
        audit_retention_days=_positive(raw, "audit.retention_days"),
        audit_checkpoint_every=_positive(raw, "audit.checkpoint_every"),
        audit_checkpoint_log=_path_or(raw, "audit.checkpoint_log", home / "audit-checkpoints.log"),
        auth=_auth(raw),
        plugins_enabled=tuple(dict.fromkeys(enabled)),
        activation_refresh_seconds=_get(raw, "plugins.activation_refresh_seconds", float),
        grid_codes=GridCodeRules(
            township=_ranges(raw, "grid.codes.township"),
            community=_ranges(raw, "grid.codes.community"),
            grid_digits=_digits(raw, "grid.codes.grid_digits"),
            unit_digits=_digits(raw, "grid.codes.unit_digits"),
        ),
        notify=_notify(raw),
        files=_files(raw, home),
        jobs=_jobs(raw),
        ui=_ui(raw),
        map=_map(raw),
        raw=raw,
    )


def home_from_env(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("YIWANG_HOME") or "var").resolve()


def site_file_for(home: Path, environ: Mapping[str, str]) -> Path:
    site = environ.get("YIWANG_SITE")
    return Path(site).resolve() if site else home / "site.toml"


def check_known(defaults: Mapping[str, Any], given: Mapping[str, Any], source: str, at: str = "") -> None:
    """Reject keys the defaults do not have: a typo must not be silently ignored.

    ``[plugin.<name>]`` tables belong to plugins and are checked by them.
    """
    for key, value in given.items():
        dotted = f"{at}{key}"
        if dotted == "plugin":
            continue
        if key not in defaults:
            raise SettingsError(f"{source} 中有未知配置项 {dotted}")
        if isinstance(defaults[key], Mapping):
            if not isinstance(value, Mapping):
                raise SettingsError(f"{source} 中 {dotted} 应为一个表 [{dotted}]")
            check_known(defaults[key], value, source, dotted + ".")


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    require_site: bool = False,
) -> Settings:
    """Load settings the way every entry point does.

    Parameters
    ----------
    environ: the environment to read (default ``os.environ``).
    overrides: tables merged last (tests and the CLI use this).
    require_site: fail when the site file is missing (``serve`` needs ``yiwang init`` first).
    """
    env = os.environ if environ is None else environ
    home = home_from_env(env)
    site_file = site_file_for(home, env)
    defaults = read_toml(config_dir() / "yiwang.toml")
    raw = defaults
    if site_file.exists():
        site = read_toml(site_file)
        check_known(defaults, site, str(site_file))
        raw = merge(raw, site)
    elif require_site or "YIWANG_SITE" in env:
        raise SettingsError(f"站点配置文件不存在: {site_file}。请先运行 `yiwang init`。")
    from_env = env_overrides(env)
    check_known(defaults, from_env, "环境变量")
    raw = merge(raw, from_env)
    if overrides:
        raw = merge(raw, overrides)
    return build(raw, home=home, site_file=site_file)
