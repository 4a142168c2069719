"""Settings: shipped defaults, then the site file, then YIWANG_* variables; every mistake is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from yiwang.errors import SettingsError
from yiwang.settings import Settings, load_settings


def write_site(home: Path, body: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    site = home / "site.toml"
    site.write_text(body, encoding="utf-8")
    return site


def load(home: Path, **env: str) -> Settings:
    return load_settings({"YIWANG_HOME": str(home), **env})


def test_defaults_load_without_a_site_file(tmp_path: Path) -> None:
    s = load(tmp_path)
    assert s.site_name == "一网 · 综治信息平台"
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.database_url == f"sqlite:///{(tmp_path / 'yiwang.db').resolve()}"
    assert s.busy_timeout_ms == 10000
    assert s.plugins_enabled == ()
    assert s.secret_key == ""
    assert s.site_file == tmp_path / "site.toml"
    assert [r.kind for r in s.grid_codes.township] == ["街道", "镇", "乡"]


def test_site_file_overrides_defaults(tmp_path: Path) -> None:
    write_site(
        tmp_path,
        '[site]\nname = "南宁市综治平台"\n[server]\nport = 9000\n'
        '[database]\nurl = "postgresql://u@db/yiwang"\nbusy_timeout_ms = 1500\n'
        '[plugins]\nenabled = ["notice"]\n[plugin.notice]\nkeep_days = 30\n',
    )
    s = load(tmp_path)
    assert s.site_name == "南宁市综治平台"
    assert s.port == 9000
    assert s.database_url == "postgresql://u@db/yiwang"
    assert s.busy_timeout_ms == 1500
    assert s.plugins_enabled == ("notice",)
    assert s.plugin_settings("notice") == {"keep_days": 30}
    assert s.host == "127.0.0.1"  # untouched keys keep their defaults


def test_yiwang_site_names_another_site_file(tmp_path: Path) -> None:
    other = write_site(tmp_path / "elsewhere", '[site]\nname = "另一处"\n')
    assert load(tmp_path / "home", YIWANG_SITE=str(other)).site_name == "另一处"


def test_database_url_variable(tmp_path: Path) -> None:
    url = "postgresql://yiwang@10.0.0.5/gx"
    assert load(tmp_path, YIWANG_DATABASE_URL=url).database_url == url


def test_plugins_variable_is_a_comma_list(tmp_path: Path) -> None:
    s = load(tmp_path, YIWANG_PLUGINS=" notice, event ,,notice ")
    assert s.plugins_enabled == ("notice", "event")
    assert load(tmp_path, YIWANG_PLUGINS="").plugins_enabled == ()


def test_secret_theme_and_debug_variables(tmp_path: Path) -> None:
    s = load(tmp_path, YIWANG_SECRET_KEY="k" * 40, YIWANG_THEME="nanning", YIWANG_DEBUG="TRUE")
    assert (s.secret_key, s.theme, s.debug) == ("k" * 40, "nanning", True)


def test_section_key_variables_are_parsed_as_toml(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        YIWANG_SERVER__PORT="8443",
        YIWANG_DATABASE__ECHO="true",
        YIWANG_PLUGINS__ACTIVATION_REFRESH_SECONDS="0.5",
        YIWANG_GRID__CODES__GRID_DIGITS="[3]",
        YIWANG_SITE__NAME="柳州 综治",  # not TOML: taken as a string
        YIWANG_SERVER__HOST='"0.0.0.0"',
    )
    assert s.port == 8443
    assert s.echo_sql is True
    assert s.activation_refresh_seconds == 0.5
    assert s.grid_codes.grid_digits == (3,)
    assert s.site_name == "柳州 综治"
    assert s.host == "0.0.0.0"


def test_unrelated_yiwang_variables_are_ignored(tmp_path: Path) -> None:
    s = load(tmp_path, YIWANG_TEST_POSTGRESQL="postgresql://x@y/z")
    assert s.database_url.startswith("sqlite:///")


def test_environment_beats_site_file_beats_defaults(tmp_path: Path) -> None:
    write_site(tmp_path, "[server]\nport = 9000\nhost = \"10.1.1.1\"\n")
    s = load(tmp_path, YIWANG_SERVER__PORT="9100")
    assert s.port == 9100  # env over site
    assert s.host == "10.1.1.1"  # site over defaults
    assert s.pool_size == 10  # defaults
    write_site(tmp_path, '[database]\nurl = "sqlite:////srv/site.db"\n')
    assert load(tmp_path).database_url == "sqlite:////srv/site.db"
    assert load(tmp_path, YIWANG_DATABASE_URL="sqlite:////srv/a.db").database_url == "sqlite:////srv/a.db"


def test_overrides_argument_wins_over_everything(tmp_path: Path) -> None:
    s = load_settings(
        {"YIWANG_HOME": str(tmp_path), "YIWANG_SERVER__PORT": "9100"},
        overrides={"server": {"port": 9200}},
    )
    assert s.port == 9200


def test_malformed_site_file_names_the_file(tmp_path: Path) -> None:
    site = write_site(tmp_path, "[database\nurl = 'x'\n")
    with pytest.raises(SettingsError, match="格式错误") as exc:
        load(tmp_path)
    assert str(site) in str(exc.value)
    assert "line 1" in str(exc.value)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('[database]\nurll = "sqlite:///x.db"\n', "database.urll"),
        ("[databse]\nurl = ''\n", "databse"),
        ("[grid.codes]\ngrid_digit = [2]\n", "grid.codes.grid_digit"),
    ],
)
def test_unknown_key_in_site_file_is_named(tmp_path: Path, body: str, key: str) -> None:
    site = write_site(tmp_path, body)
    with pytest.raises(SettingsError, match="未知配置项") as exc:
        load(tmp_path)
    assert key in str(exc.value) and str(site) in str(exc.value)


def test_unknown_key_in_environment_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"环境变量.*database\.urll"):
        load(tmp_path, YIWANG_DATABASE__URLL="sqlite:///x.db")


def test_section_given_as_a_value_is_rejected(tmp_path: Path) -> None:
    write_site(tmp_path, 'server = "10.0.0.1"\n')
    with pytest.raises(SettingsError, match=r"server 应为一个表"):
        load(tmp_path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[server]\nport = "abc"\n', r"server\.port 应为 int，实际为 'abc'"),
        ("[server]\nport = 70000\n", r"server\.port 超出范围"),
        ('[site]\ndebug = "yes"\n', r"site\.debug 应为 bool"),
        ("[database]\nbusy_timeout_ms = true\n", r"database\.busy_timeout_ms 应为 int"),
        ('[plugins]\nenabled = "notice"\n', r"plugins\.enabled 应为 list"),
        ("[plugins]\nenabled = [1]\n", r"plugins\.enabled 应为插件名列表"),
        ('[grid.codes]\ntownship = [[1, 99]]\n', r"grid\.codes\.township 的每一项"),
        ("[grid.codes]\nunit_digits = [9]\n", r"grid\.codes\.unit_digits 应为 1–4"),
    ],
)
def test_wrong_type_is_a_clear_error(tmp_path: Path, body: str, message: str) -> None:
    write_site(tmp_path, body)
    with pytest.raises(SettingsError, match=message):
        load(tmp_path)


def test_wrong_type_from_environment(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"server\.port 应为 int，实际为 'abc'"):
        load(tmp_path, YIWANG_SERVER__PORT="abc")


def test_missing_file_named_by_yiwang_site_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(SettingsError, match="站点配置文件不存在") as exc:
        load(tmp_path, YIWANG_SITE=str(missing))
    assert str(missing) in str(exc.value)


def test_missing_site_file_is_an_error_only_when_required(tmp_path: Path) -> None:
    load(tmp_path)
    with pytest.raises(SettingsError, match="yiwang init"):
        load_settings({"YIWANG_HOME": str(tmp_path)}, require_site=True)


def test_settings_are_immutable(tmp_path: Path) -> None:
    s = load(tmp_path)
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]
