"""The plugin contract: every hook a yiwang plugin may implement.

Each hook is a typed no-op whose docstring is its contract. Implement one by decorating a
function of the same name and parameters (a subset is allowed) in your plugin's hooks module::

    from yiwang.api import hookimpl

    @hookimpl
    def yiwang_menu_items():
        return [MenuItem(label="通知公告", href="/p/notice/")]

Three kinds of hook, and how the kernel calls them:

* **Declaration hooks** return records the kernel collects once when an application is built.
  They are collected from the kernel's own built-in implementation first, then from each
  enabled plugin in dependency order, and each record is tagged with its plugin's name.
* **Node hooks** concern one node of the net. They reach only the plugins *active at that
  node* (the nearest explicit activation above it, else the plugin's default).
* **Data hooks** react to changes of shared kernel data inside the writing transaction. They
  reach every enabled plugin, active or not: deactivation hides a module, its data must still
  follow the net.

Every hook is part of the versioned plugin API (``yiwang.API_VERSION``); the reference
``docs/plugins/hooks.md`` documents each one and a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click
    from markupsafe import Markup
    from sqlmodel import Session, SQLModel
    from starlette.requests import Request
    from starlette.routing import BaseRoute

    from yiwang.audit import Actor
    from yiwang.cases.models import Case
    from yiwang.cases.workflow import CaseType, Workflow
    from yiwang.grid.models import Node
    from yiwang.jobs.declarations import Job
    from yiwang.kernel import Kernel
    from yiwang.plugins.records import (
        Dictionary,
        MapLayer,
        MenuItem,
        Permission,
        RoleSpec,
        SearchHit,
    )
    from yiwang.privacy.registry import PersonalField
    from yiwang.stats.indicators import Indicator

PROJECT = "yiwang"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# ---------------------------------------------------------------------------------------------
# Declaration hooks — collected once per application, kernel first, then dependency order
# ---------------------------------------------------------------------------------------------


@hookspec
def yiwang_models() -> Sequence[type[SQLModel]]:
    """Declare the tables this plugin owns.

    Return the SQLModel table classes defined by the plugin. Every table name must start with
    ``<plugin>_`` (the contract suite checks it) and must be created by the plugin's own
    migration branch; a table may reference kernel tables such as ``grid_node``.

    :returns: a sequence of SQLModel classes with ``table=True``.
    :since: 1.0
    """


@hookspec
def yiwang_routes() -> Sequence[BaseRoute]:
    """Declare the plugin's web routes.

    The kernel mounts them under ``/p/<plugin>/``. A request reaches them only where the plugin
    is active at the request's node (``yiwang.api.current_node``); elsewhere the kernel answers
    404 "本地区未启用该模块". Route names are prefixed ``<plugin>:`` for ``url_for``.

    :returns: a sequence of Starlette routes (``Route``, ``Mount``, ``WebSocketRoute``).
    :since: 1.0
    """


@hookspec
def yiwang_menu_items() -> Sequence[MenuItem]:
    """Declare entries of the left menu.

    The shell shows an item only where its plugin is active at the user's current node.

    :returns: a sequence of ``yiwang.api.MenuItem``.
    :since: 1.0
    """


@hookspec
def yiwang_cli_commands() -> Sequence[click.Command]:
    """Declare command-line commands.

    They appear under ``yiwang <plugin> …``; each receives the loaded ``yiwang.api.Kernel``
    through ``click.pass_obj``. Commands must validate their input and exit non-zero with a
    clear message (raise ``yiwang.api.ValidationError`` or ``click.ClickException``).

    :returns: a sequence of ``click.Command`` objects.
    :since: 1.0
    """


@hookspec
def yiwang_permissions() -> Sequence[Permission]:
    """Declare the permissions this plugin's routes and actions check.

    Names are ``<plugin>.<verb>`` (the contract suite checks the prefix), e.g. ``notice.view``,
    ``notice.post``. Mark ``personal=True`` a permission that reveals personal data: the audit
    administrator may never hold it. Declared permissions appear on the grants page.

    :returns: a sequence of ``yiwang.api.Permission``.
    :since: 1.0
    """


@hookspec
def yiwang_roles() -> Sequence[RoleSpec]:
    """Declare roles this plugin adds (most plugins only grant to the kernel's roles).

    Declared roles are created when missing at start-up and never deleted; their titles follow
    the declaration.

    :returns: a sequence of ``yiwang.api.RoleSpec``.
    :since: 1.0
    """


@hookspec
def yiwang_grants() -> Mapping[str, Sequence[str]]:
    """Declare default grants: role name → permission names (``"notice.*"`` grants every action).

    Each default grant is applied once, the first time the kernel sees it; an administrator's
    later revocation is respected and never re-applied. Grant to the kernel's roles
    (``province_staff`` … ``community_staff``, ``dispatcher``, ``grid_worker``,
    ``dept_handler``, ``mediator``, ``leader``, ``system_admin``, ``security_admin``,
    ``audit_admin``) or to your own.

    :returns: a mapping of role name to permission names.
    :since: 1.0
    """


@hookspec
def yiwang_personal_fields() -> Sequence[PersonalField]:
    """Classify the personal-information fields of this plugin's models (个人信息分类).

    Every field holding personal data is declared, as general (一般) or sensitive (敏感), with a
    kind that decides its masking: ``id_number``, ``phone``, ``name``, ``address``, ``other``.
    Sensitive fields must be stored encrypted (declared with ``yiwang.api.sensitive_field``).
    The kernel refuses to start when a declaration names a field that does not exist, a
    sensitive field is not encrypted, or an encrypted field of a declared model is not
    declared. ``yiwang.api.personal_fields_of(Model)`` builds the records from the model's
    ``sensitive_field`` / ``personal_field`` columns.

    :returns: a sequence of ``yiwang.api.PersonalField``.
    :since: 1.0
    """


@hookspec
def yiwang_indicators() -> Sequence[Indicator]:
    """Declare the counts this plugin keeps per node of the net (统计指标).

    Names are ``<plugin>.<thing>`` (checked at start-up), e.g. ``population.persons`` with
    keys ``("registered", "floating", "foreign", "unregistered")``, or no keys for a plain
    count. The plugin keeps them with ``yiwang.api.stats.add`` / ``stats.move`` in the unit
    of work that writes its records (applied at commit, in that transaction, to the node and
    every ancestor). Give ``source`` — a callable ``source(session)`` or an SQL select
    yielding ``(node path, key, count)`` rows — so ``yiwang stats recount`` can verify and
    repair the rollups; the kernel itself keeps them right when the net's subtrees move.

    :returns: a sequence of ``yiwang.api.Indicator``.
    :since: 1.0
    """


@hookspec
def yiwang_jobs() -> Sequence[Job]:
    """Declare periodic jobs (定时任务) the kernel runs for this plugin.

    Names are ``<plugin>.<thing>`` (checked at start-up), e.g. ``cases.clock`` every minute.
    ``Job.run(kernel, now)`` receives the scheduled time and returns how many things it did
    (or None); it opens its own units of work and raises to report a failure (logged and shown
    on the jobs page; the other jobs still run). Each job runs at most once per period on the
    whole deployment, however many workers tick, and once — not once per missed period — after
    downtime: write it to catch up by itself (e.g. "every case past its deadline").

    :returns: a sequence of ``yiwang.api.Job``.
    :since: 1.0
    """


@hookspec
def yiwang_workflows() -> Sequence[Workflow]:
    """Declare case workflows (事件处置流程) as data.

    A ``yiwang.api.Workflow`` lists states, actions (with permission, source and target states,
    required opinion/attachment/form fields, routing up/down/back/copy, kernel effect) and the
    initial state. Names are ``<plugin>.<thing>``; the kernel ships ``standard``. Every distinct
    definition is stored as a new version; a case keeps the version it started with.
    ``yiwang workflow check`` validates every definition.

    :returns: a sequence of ``yiwang.api.Workflow``.
    :since: 1.0
    """


@hookspec
def yiwang_case_types() -> Sequence[CaseType]:
    """Declare case types (事件类型) this plugin handles.

    A ``yiwang.api.CaseType`` has a name (``<plugin>.<thing>``), a Chinese title, a category,
    its extra report-form fields (stored with the case), its workflow (``"standard"`` or one the
    plugin declares) and its time limits in working days (``yiwang.api.Limits``).

    :returns: a sequence of ``yiwang.api.CaseType``.
    :since: 1.0
    """


@hookspec
def yiwang_dictionaries() -> Sequence[Dictionary]:
    """Declare the plugin's code tables (数据字典), e.g. 民族 or 房屋用途.

    Forms offer ``yiwang.api.dictionary(kernel, name, node_path)`` (the province's switched-on
    items, code → label, in its order) and pages show stored codes with
    ``yiwang.api.dictionary_labels(...)``. A province's administrators rename, reorder and switch
    off items on 系统管理 › 数据字典, and add items to ``extensible`` ones; codes are what is
    stored and never change. Names are ``<plugin>.<name>``; a duplicate stops start-up.

    :returns: a sequence of ``Dictionary`` records.
    :since: 1.1
    """


# ---------------------------------------------------------------------------------------------
# Node hooks — dispatched only to plugins active at the node
# ---------------------------------------------------------------------------------------------


@hookspec
def yiwang_template_slot(slot: str, node: Node | None, request: Request) -> Markup | str | None:
    """Contribute HTML to a named slot of a page that concerns ``node``.

    Pages declare slots with ``{{ slot("node.detail", node) }}``; the kernel joins every
    non-None contribution in call order. Return ``Markup`` (e.g. from
    ``yiwang.api.render_fragment``) — a plain ``str`` is escaped.

    Slots the kernel renders today: ``node.detail`` (the node page, below its children),
    ``dashboard.cards`` (the dashboard of ``node``: one ``<div class="dash-card">`` per
    contribution, docs/dashboard.md), ``layout.head`` (inside ``<head>``), ``layout.footer``
    (page footer), ``mobile.home`` (the big buttons of the grid worker's phone home page
    ``/m/``, e.g. a patrol link).

    :param slot: the slot name.
    :param node: the node the page concerns (the request's current node on layout slots; None
        when the net is empty).
    :param request: the current request.
    :returns: HTML for the slot, or None to contribute nothing.
    :since: 1.0
    """


@hookspec
def yiwang_search(request: Request, q: str, limit: int) -> Sequence[SearchHit] | None:
    """Answer the global search (Ctrl+K or ``/`` in the top bar, ``/search?q=``).

    Called for the plugins active at the user's current node. Return the hits the user may see
    — scoped in SQL to where they hold the permission of the page a hit links to — with
    personal data masked as that page masks it. Match what a user types: codes and numbers by
    prefix, names by substring, and a Latin ``q`` by pinyin initials where the plugin stores
    them (``yiwang.api.pinyin_initials``).

    :param request: the current request (``yiwang.api.principal(request)`` is the user).
    :param q: the stripped query, 1–50 characters.
    :param limit: at most this many hits from this plugin.
    :returns: ``SearchHit`` records, or None.
    :since: 1.1
    """


@hookspec
def yiwang_map_layers(node: Node) -> Sequence[MapLayer]:
    """Contribute layers to the grid map (网格地图) at ``node``.

    Called when the map page of ``node`` renders, for plugins active at ``node``; each layer
    whose ``permission`` the user holds at ``node`` is offered as a toggle. The map fetches the
    layer's ``url`` with ``?node=<code>`` and draws the GeoJSON FeatureCollection it returns:
    the route scopes its features to the user in SQL, bounds their number, and carries no
    personal data in them.

    :param node: the node the map shows.
    :returns: a sequence of ``yiwang.api.MapLayer``.
    :since: 1.1
    """


@hookspec
def yiwang_case_guard(
    session: Session, case: Case, action: str, opinion: str, actor: Actor
) -> str | Sequence[str] | None:
    """Veto an action on a case before the kernel applies it.

    Called for plugins active at the case's node, inside the acting transaction, after the
    kernel's own checks passed. Return one or more reasons (Chinese, shown to the user) to
    refuse; None lets it pass. Do not change the case: only the kernel applies transitions.

    :param session: the open unit of work (read what you need; do not commit).
    :param case: the case as it is before the action.
    :param action: the action's name, e.g. ``"close"``.
    :param opinion: the opinion the user entered.
    :param actor: who acts.
    :returns: a reason, a sequence of reasons, or None.
    :since: 1.0
    """


@hookspec
def yiwang_case_changed(kernel: Kernel, case_id: int, action: str, step_id: int) -> None:
    """React to a case change after it was committed (report, every action, clock cards).

    Called for plugins active at the case's node once the transaction is durable; open your own
    unit of work if you write. An exception is logged and does not undo the change.

    :param kernel: the running kernel.
    :param case_id: the case.
    :param action: the action's name (``"report"``, ``"dispatch"``, ``"card_red"`` …).
    :param step_id: the timeline step the change wrote.
    :since: 1.0
    """


# ---------------------------------------------------------------------------------------------
# Data hooks — every enabled plugin, inside the writing transaction
# ---------------------------------------------------------------------------------------------


@hookspec
def yiwang_node_created(session: Session, node: Node) -> None:
    """React to a node added to the net (by the admin, a roster import or ``yiwang demo``).

    Called inside the transaction that created the node, after it is flushed; raising aborts
    the whole change. Bulk imports call it once per node, parents first.

    :param session: the open unit of work; do not commit.
    :param node: the new node.
    :since: 1.0
    """


@hookspec
def yiwang_node_moved(session: Session, node: Node, old_path: str, moved: int) -> None:
    """React to a subtree moved to a new parent (paths, ancestor columns and maybe codes change).

    Called inside the moving transaction after the kernel rewrote ``grid_node``. A plugin that
    keeps copies of paths or ancestor ids (denormalised for fast scoped lists) updates them
    here with one set-based statement per table, e.g. filtering on the old path range.

    :param session: the open unit of work; do not commit.
    :param node: the moved node, reloaded with its new path and code.
    :param old_path: the node's path before the move; the old subtree is every path starting
        with it.
    :param moved: number of nodes in the subtree.
    :since: 1.0
    """


@hookspec
def yiwang_demo(kernel: Kernel, session: Session, scale: str, seed: int) -> None:
    """Fill demonstration data after the kernel has built the demo net.

    Called by ``yiwang demo`` in one transaction per plugin, kernel first and then in
    dependency order. Data must be deterministic for a given ``seed`` (use
    ``random.Random(seed)``) and generated, never copied from real people.

    :param kernel: the running kernel (settings, database, plugin host).
    :param session: the open unit of work; do not commit.
    :param scale: ``"small"`` (fast start, seconds) or ``"full"`` (provincial size, benchmarks).
    :param seed: seed for every random choice.
    :since: 1.0
    """


#: Hooks dispatched per node (``PluginHost.hook_at``); the rest reach every enabled plugin.
NODE_HOOKS = frozenset(
    {"yiwang_template_slot", "yiwang_search", "yiwang_map_layers", "yiwang_case_guard", "yiwang_case_changed"}
)

#: Declaration hooks, collected per plugin in load order (``PluginHost.collect``).
DECLARATION_HOOKS = frozenset(
    {
        "yiwang_models", "yiwang_routes", "yiwang_menu_items", "yiwang_cli_commands",
        "yiwang_permissions", "yiwang_roles", "yiwang_grants", "yiwang_personal_fields",
        "yiwang_indicators", "yiwang_jobs", "yiwang_workflows", "yiwang_case_types",
        "yiwang_dictionaries",
    }
)  # fmt: skip


def all_hooks() -> list[str]:
    """Names of every hook in this module, in definition order."""
    return [name for name, obj in globals().items() if name.startswith("yiwang_") and callable(obj)]


__all__ = ["hookimpl", "hookspec", "all_hooks", "NODE_HOOKS", "DECLARATION_HOOKS"]
