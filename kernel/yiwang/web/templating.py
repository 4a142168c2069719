"""Jinja2 with autoescape everywhere and the loader chain city theme → parents → plugins → kernel.

Unprefixed names resolve down that chain, so a theme or plugin overrides a kernel template by
shipping one with the same name. Prefixed names reach one layer directly, so an override can
extend what it replaces: ``{% extends "@kernel/grid/node.html" %}``, ``"@theme:default/base.html"``,
``"@notice/notice/list.html"``.
"""

from __future__ import annotations

import importlib.util
import tomllib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PrefixLoader,
    StrictUndefined,
    pass_context,
    select_autoescape,
)
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, NoMatchFound, Router
from starlette.staticfiles import StaticFiles

from yiwang.errors import SettingsError
from yiwang.plugins.host import KERNEL
from yiwang.privacy.masking import mask
from yiwang.settings import package_root
from yiwang.web.i18n import NAMES, Catalogs, html_lang

if TYPE_CHECKING:
    from yiwang.kernel import Kernel


def theme_chain(themes_path: Path, name: str) -> list[Path]:
    """The theme folder and its ancestors (``extends`` in theme.toml), most specific first."""
    chain: list[Path] = []
    seen: set[str] = set()
    current: str | None = name
    while current:
        if current in seen:
            raise SettingsError(f"主题继承成环: {current}")
        seen.add(current)
        folder = themes_path / current
        meta_file = folder / "theme.toml"
        if not meta_file.is_file():
            raise SettingsError(f"主题 {current} 不存在（找不到 {meta_file}）")
        with meta_file.open("rb") as fh:
            try:
                meta = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise SettingsError(f"主题配置格式错误 {meta_file}: {exc}") from None
        chain.append(folder)
        parent = meta.get("extends")
        current = parent if isinstance(parent, str) and parent else None
    return chain


#: Attribute of a router: (route name, parameter names) → the top-level route building it.
_ROUTE_OF = "_yiwang_route_of"


def route_path(app: Any, name: str, /, **params: Any) -> str:
    """``app.url_path_for(name, **params)`` as a string, remembering which route answers.

    Starlette tries every route in turn (each Mount raising NoMatchFound): with a few hundred
    routes that was a quarter of a 20-row list page's time. Routes are fixed once the app is
    built, so the route found first for a name and parameter names answers every later call.
    """
    router: Router = app.router
    found: dict[tuple[str, frozenset[str]], BaseRoute] | None = getattr(router, _ROUTE_OF, None)
    if found is None:
        found = {}
        setattr(router, _ROUTE_OF, found)
    key = (name, frozenset(params))
    route = found.get(key)
    if route is not None:
        return str(route.url_path_for(name, **params))
    for route in router.routes:
        try:
            path = route.url_path_for(name, **params)
        except NoMatchFound:
            continue
        found[key] = route
        return str(path)
    raise NoMatchFound(name, params)


@pass_context
def url_for(context: Any, name: str, /, **params: Any) -> str:
    """Path of a named route, e.g. ``url_for('grid:node', code=c.code)``."""
    request: Request = context["request"]
    return route_path(request.app, name, **params)


def plugin_dir(package: str, sub: str) -> Path | None:
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        return None
    folder = Path(list(found.submodule_search_locations)[0]) / sub
    return folder if folder.is_dir() else None


class ChainStaticFiles(StaticFiles):
    """Static files looked up in several folders in order (city theme before default)."""

    def __init__(self, directories: list[Path]) -> None:
        self._chain = [str(d) for d in directories]
        super().__init__(directory=directories[0] if directories else None, check_dir=False)

    def get_directories(self, directory: Any = None, packages: Any = None) -> list[Any]:
        return list(self._chain)


class Templates:
    """The template environment of one kernel and how pages are rendered."""

    def __init__(self, kernel: Kernel) -> None:
        settings = kernel.settings
        self.kernel = kernel
        self.theme_dirs = theme_chain(settings.themes_path, settings.theme)
        kernel_dir = package_root() / "templates"
        prefixed: dict[str, BaseLoader] = {"@kernel": FileSystemLoader(kernel_dir)}
        chain: list[BaseLoader] = []
        for folder in self.theme_dirs:
            loader = FileSystemLoader(folder / "templates")
            prefixed[f"@theme:{folder.name}"] = loader
            chain.append(loader)
        self.plugin_static: dict[str, Path] = {}
        locale_dirs = [package_root() / "locale"]
        for spec in kernel.host.specs.values():
            ldir = plugin_dir(spec.package_name, "locale")
            if ldir is not None:
                locale_dirs.append(ldir)
            tdir = plugin_dir(spec.package_name, "templates")
            if tdir is not None:
                loader = FileSystemLoader(tdir)
                prefixed[f"@{spec.name}"] = loader
                chain.append(loader)
            sdir = plugin_dir(spec.package_name, "static")
            if sdir is not None:
                self.plugin_static[spec.name] = sdir
        self.env = Environment(
            loader=ChoiceLoader([PrefixLoader(prefixed, delimiter="/"), *chain, FileSystemLoader(kernel_dir)]),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=settings.debug,
            extensions=["jinja2.ext.i18n"],
        )
        # Message ids are the Chinese source text (zh_CN is the default and needs no catalog);
        # render() installs the request's locale as `_`/`gettext`/`ngettext` (docs/i18n.md).
        self.env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
        self.catalogs = Catalogs(settings.locale, locale_dirs)
        self._gettexts: dict[str, dict[str, Any]] = {}
        self.env.filters["mask"] = mask  # {{ p.id_number|mask("id_number") }}
        from yiwang.web.security import csrf_token_of

        self.env.globals.update(
            site_name=settings.site_name,
            slot=self.slot,
            url_for=url_for,
            csrf_token=csrf_token_of,
            auth_policy=settings.auth,
        )
        self.role_titles = {r.name: r.title for _, r in kernel.host.collect_items("yiwang_roles")}
        self.env.globals["role_titles"] = self.role_titles
        self.menu = sorted(
            (replace(item, plugin=name) for name, item in kernel.host.collect_items("yiwang_menu_items")),
            key=lambda m: (m.order, m.label),
        )

    def language(self, request: Request) -> dict[str, Any]:
        """The template names that carry a request's language: ``_``, ``gettext``, ``ngettext``,
        ``lang`` (for ``<html lang>``), ``locale`` and the ``locales`` to switch to."""
        lang = self.catalogs.choose(request)
        if lang not in self._gettexts:
            tr = self.catalogs.translations(lang)
            self._gettexts[lang] = {
                "_": _newstyle_gettext(tr.gettext),
                "gettext": _newstyle_gettext(tr.gettext),
                "ngettext": _newstyle_ngettext(tr.ngettext),
                "lang": html_lang(lang),
                "locale": lang,
                "locales": [(code, NAMES.get(code, code)) for code in self.catalogs.available],
            }
        return self._gettexts[lang]

    def theme_static(self) -> ChainStaticFiles:
        return ChainStaticFiles([d / "static" for d in self.theme_dirs if (d / "static").is_dir()])

    def slot(self, name: str, node: Any, request: Request) -> Markup:
        """Join every active plugin's contribution to slot ``name`` for ``node``."""
        results = self.kernel.hook_at(node).yiwang_template_slot(slot=name, node=node, request=request)
        parts = [r if isinstance(r, Markup) else escape(r) for r in reversed(results) if r]
        return Markup("").join(parts)

    def menu_for(self, node: Any, principal: Any) -> list[Any]:
        """Items whose plugin is active at ``node`` and whose permission the user holds there."""
        if principal is None:
            return []
        active = self.kernel.activation.active_plugins(node)
        path = node.path if node is not None else None
        authz = self.kernel.authz
        return [
            m
            for m in self.menu
            if (m.plugin == KERNEL or m.plugin in active)
            and (not m.permission or authz.allowed(principal.grants, m.permission, path))
        ]

    def render(
        self,
        request: Request,
        name: str,
        context: dict[str, Any] | None = None,
        *,
        status_code: int = 200,
        node: Any = None,
    ) -> HTMLResponse:
        """Render a page, or just its content when htmx asks (``HX-Request``)."""
        htmx = request.headers.get("HX-Request") == "true" and not request.headers.get(
            "HX-History-Restore-Request"
        )
        principal = request.scope.get("yiwang.principal")
        ctx = {
            **self.language(request),
            "request": request,
            "htmx": htmx,
            "node": node,
            "principal": principal,
        }
        if not htmx:  # the shell: only a whole page draws it
            menu = self.menu_for(node, principal)
            ctx |= {
                "menu": menu,
                "menu_sections": menu_sections(menu),
                "menu_active": active_href(menu, request.url.path),
                "inbox_badge": principal is not None
                and self.kernel.authz.allowed(principal.grants, "cases.view", None),
            }
        ctx |= context or {}
        html = self.env.get_template(name).render(ctx)
        response = HTMLResponse(html, status_code=status_code)
        response.headers["Vary"] = "HX-Request"
        return response

    def render_fragment(self, name: str, context: dict[str, Any]) -> Markup:
        request = context.get("request")
        lang = self.language(request) if isinstance(request, Request) else {}
        return Markup(self.env.get_template(name).render({**lang, **context}))


def menu_sections(menu: list[Any]) -> list[tuple[str, list[Any]]]:
    """Menu items grouped by section, sections in the order of their first item."""
    sections: dict[str, list[Any]] = {}
    for item in menu:
        sections.setdefault(item.section, []).append(item)
    return list(sections.items())


def active_href(menu: list[Any], path: str) -> str:
    """The item a page belongs to: the longest ``href`` that starts the path."""
    best = ""
    for item in menu:
        href = item.href.split("?")[0]
        if (path == href or path.startswith(href.rstrip("/") + "/")) and len(href) > len(best):
            best = item.href
    return best


#: Translations kept as markup per language, for messages without placeholders: a page asks for
#: hundreds (headers, badges, every row's labels), and translating, wrapping and formatting each
#: again cost the inbox ≈ 1,000 Python calls a page (docs/performance.md). Bounded: the messages
#: are the templates' and the declared labels.
GETTEXT_CACHE = 4096


def _newstyle_gettext(func: Callable[[str], str]) -> Callable[..., str]:
    """``_("共 %(n)s 件", n=3)``: translated, then formatted with escaped values (as Jinja's
    newstyle gettext does)."""
    done: dict[str, Markup] = {}

    @pass_context
    def gettext(context: Any, message: str, /, **variables: Any) -> str:
        if not context.eval_ctx.autoescape:
            return func(message) % variables
        rv = done.get(message)
        if rv is None:
            rv = Markup(func(message))
            if len(done) < GETTEXT_CACHE:
                done[message] = rv
        if variables:
            return rv % variables
        # ``%%`` stands for ``%`` even without values, as in Jinja's own gettext; a lone ``%`` in a
        # label translated as data (``_(state.title)``) is left as it is, not an error.
        return Markup(rv.replace("%%", "%")) if "%" in rv else rv

    return gettext


def _newstyle_ngettext(func: Callable[[str, str, int], str]) -> Callable[..., str]:
    @pass_context
    def ngettext(context: Any, singular: str, plural: str, num: int, /, **variables: Any) -> str:
        variables.setdefault("num", num)
        rv: str = func(singular, plural, num)
        if context.eval_ctx.autoescape:
            rv = Markup(rv)
        return rv % variables

    return ngettext
