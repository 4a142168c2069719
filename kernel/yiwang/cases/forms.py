"""What the case pages read from a request: submitted forms with their files (size-capped),
the inbox search, an action's inputs and a staff report — each with Chinese problems instead of
exceptions, so a page can show them beside the form it re-renders.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from yiwang.cases.engine import ActionInput, NewCase, Upload
from yiwang.cases.models import CARDS, URGENCY
from yiwang.cases.queries import DATE_FIELDS, TABS, Filters
from yiwang.cases.workflow import Action
from yiwang.grid.models import Node
from yiwang.grid.tree import is_within

if TYPE_CHECKING:
    from sqlmodel import Session

    from yiwang.kernel import Kernel
    from yiwang.rbac.authz import Grant

#: Times are stored in UTC and shown in Beijing time.
TZ = ZoneInfo("Asia/Shanghai")
#: Files one form may carry (photos of a site visit, a scanned document or two).
MAX_FILES = 9
#: Text parts are small; a larger one is a malformed or hostile request.
MAX_FIELD_BYTES = 64 * 1024
#: Channels staff may enter a case for: their own report, or a citizen's by phone or online.
STAFF_CHANNELS = ("web", "hotline", "public", "wechat", "sms")
COORDS = {"wgs84": "WGS-84（GPS 定位）", "gcj02": "GCJ-02（国内地图选点）"}


def local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored (UTC) time in Beijing time; "—" when missing."""
    if value is None:
        return "—"
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(TZ).strftime(fmt)


# --- submitted forms -----------------------------------------------------------------------------


@dataclass
class Submitted:
    """A submitted form: text values (repeatable), uploaded files, problems reading them."""

    values: dict[str, list[str]] = field(default_factory=dict)
    files: list[Upload] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def get(self, name: str, default: str = "") -> str:
        found = self.values.get(name)
        return found[0].strip() if found else default

    def getlist(self, name: str) -> list[str]:
        return [v.strip() for v in self.values.get(name, []) if v.strip()]

    def flat(self) -> dict[str, str]:
        return {k: self.get(k) for k in self.values}


def largest_file(kernel: Kernel) -> int:
    """The largest file any kind may be (the exact per-kind limit is checked when storing)."""
    settings = kernel.settings.files
    return max(settings.max_bytes(kind) for kind in settings.max_mb)


async def read_submitted(request: Request, kernel: Kernel) -> Submitted:
    """Read a url-encoded or multipart form. A body larger than every file allowed could be is
    refused from its Content-Length before anything is read; each file is read at most one
    byte past the limit (the parser spools large parts to disk, not memory)."""
    cap = largest_file(kernel)
    out = Submitted()
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_FILES * cap + 1024 * 1024:
        out.problems.append(
            f"提交的内容过大（附件每个不超过 {cap / 1024 / 1024:g} MB，最多 {MAX_FILES} 个）"
        )
        return out
    try:
        form = await request.form(
            max_files=MAX_FILES, max_fields=200, max_part_size=MAX_FIELD_BYTES
        )
    except HTTPException:
        out.problems.append(f"表单无法读取：附件最多 {MAX_FILES} 个，文字内容不宜过长")
        return out
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if not value.filename:
                    continue  # an empty file input
                data = await value.read(cap + 1)
                if len(data) > cap:
                    out.problems.append(
                        f"{value.filename}：文件过大（上限 {cap / 1024 / 1024:g} MB）"
                    )
                    continue
                out.files.append(Upload(value.filename, data))
            else:
                out.values.setdefault(key, []).append(value)
    finally:
        await form.close()
    return out


def positive_int(raw: str) -> int | None:
    raw = raw.strip()
    return int(raw) if raw.isdigit() and len(raw) < 12 else None


# --- the inbox search ----------------------------------------------------------------------------


@dataclass
class Search:
    """The inbox's tab, filters, page and the raw values to put back into the form."""

    tab: str
    filters: Filters
    page: int
    values: dict[str, str]

    @property
    def problems(self) -> list[str]:
        return self.filters.problems


SEARCH_KEYS = ("q", "type", "state", "urgency", "card", "area", "date", "since", "until")


def parse_search(
    kernel: Kernel,
    session: Session,
    grants: Sequence[Grant],
    params: Mapping[str, str],
    states: Iterable[str],
) -> Search:
    """The inbox query string → a Search; every bad value becomes a problem and is ignored."""
    values = {k: str(params.get(k, "")).strip()[:50] for k in SEARCH_KEYS}
    problems: list[str] = []
    tab = str(params.get("tab", "todo")) or "todo"
    if tab not in TABS:
        problems.append(f"列表「{tab}」不存在，已显示待办")
        tab = "todo"
    f = Filters(q=values["q"], problems=problems)
    if values["type"]:
        if values["type"] in kernel.cases.types:
            f.case_type = values["type"]
        else:
            problems.append(f"事件类型无效: {values['type']}")
    if values["state"] == "open":  # 未办结: every state that is not terminal (the map's counts)
        f.exclude_states = tuple(sorted({t for wf in kernel.cases.workflows.values() for t in wf.terminal}))
    elif values["state"]:
        if values["state"] in set(states):
            f.state = values["state"]
        else:
            problems.append(f"状态无效: {values['state']}")
    if values["urgency"]:
        if values["urgency"] in URGENCY:
            f.urgency = values["urgency"]
        else:
            problems.append(f"紧急程度无效: {values['urgency']}")
    if values["card"]:
        if values["card"] in CARDS:
            f.card = values["card"]
        else:
            problems.append(f"亮牌无效: {values['card']}")
    if values["date"]:
        if values["date"] in DATE_FIELDS:
            f.date_field = values["date"]
        else:
            problems.append(f"日期类别无效: {values['date']}")
    if values["area"]:
        path = session.execute(select(Node.path).where(Node.code == values["area"])).scalar()  # type: ignore[call-overload]
        inside = path is not None and any(
            is_within(path, p) for p in kernel.authz.scope_paths(grants, "cases.view")
        )
        if inside:
            f.node = str(path)
        else:
            problems.append(f"区域编码 {values['area']} 不存在或不在您的辖区内")
    since = _day(values["since"], "开始日期", problems)
    until = _day(values["until"], "结束日期", problems)
    if since and until and since > until:
        problems.append("开始日期不能晚于结束日期")
    else:
        f.since = _day_start(since) if since else None
        f.until = _day_start(until + timedelta(days=1)) if until else None
    raw_page = str(params.get("page", "1"))
    page = positive_int(raw_page) or 1
    return Search(tab, f, page, values)


def _day(raw: str, what: str, problems: list[str]) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        problems.append(f"{what}格式应为 年-月-日，如 2026-03-10: {raw}")
        return None


def _day_start(day: date) -> datetime:
    """Beijing midnight of ``day`` in UTC (the database keeps UTC)."""
    return datetime.combine(day, time(0), TZ).astimezone(UTC)


# --- actions ------------------------------------------------------------------------------------


def action_input(action: Action, form: Submitted, problems: list[str]) -> ActionInput:
    """An action's inputs: ``opinion``, ``target_org``, ``assignee``, ``copy_orgs`` (repeated),
    ``f_<field>`` for the action's own fields, and the uploaded files."""
    target = form.get("target_org")
    assignee = form.get("assignee")
    copies: list[int] = []
    for raw in form.getlist("copy_orgs"):
        value = positive_int(raw)
        if value is None:
            problems.append("抄告单位无效")
        else:
            copies.append(value)
    target_id = positive_int(target) if target else None
    if target and target_id is None:
        problems.append("承办单位无效")
    assignee_id = positive_int(assignee) if assignee else None
    if assignee and assignee_id is None:
        problems.append("承办人无效")
    return ActionInput(
        opinion=form.get("opinion"),
        target_org=target_id,
        assignee=assignee_id,
        copy_orgs=copies,
        fields={f.name: form.get(f"f_{f.name}") for f in action.fields},
        files=list(form.files),
    )


# --- a staff report -----------------------------------------------------------------------------


def _float(raw: str, what: str, problems: list[str]) -> float | None:
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        problems.append(f"{what}应为数字")
        return None
    if value != value or value in (float("inf"), float("-inf")):
        problems.append(f"{what}应为数字")
        return None
    return value


def new_case(kernel: Kernel, form: Submitted, node_id: int, problems: list[str], *,
             channel: str | None = None) -> NewCase:  # fmt: skip
    """The report form → NewCase (the engine validates the rest and lists its own problems).
    ``channel`` fixes the channel (the mobile pages: the grid worker's phone); else the form
    names one of STAFF_CHANNELS."""
    if channel is None:
        channel = form.get("channel", "web")
        if channel not in STAFF_CHANNELS:
            problems.append(f"来源渠道无效: {channel}")
    case_type = form.get("case_type")
    ct = kernel.cases.types.get(case_type)
    coord = form.get("coord", "wgs84")
    if coord not in COORDS:
        problems.append(f"坐标系无效: {coord}")
    key = form.get("channel_key")
    return NewCase(
        case_type=case_type,
        title=form.get("title"),
        node_id=node_id,
        channel=channel,
        description=form.get("description"),
        channel_key=key[:100] or None,
        lat=_float(form.get("lat"), "纬度", problems),
        lon=_float(form.get("lon"), "经度", problems),
        coord=coord,
        address=form.get("address"),
        urgency=form.get("urgency", "normal"),
        scale=form.get("scale", "small"),
        reporter_name=form.get("reporter_name"),
        reporter_phone=form.get("reporter_phone") or None,
        extra={f.name: form.get(f"x_{f.name}") for f in (ct.fields if ct else ())},
        files=list(form.files),
    )


def to_wgs84(lat: float, lon: float, coord: str) -> tuple[float, float]:
    if coord == "gcj02":
        from yiwang.grid.geo import gcj02_to_wgs84

        return gcj02_to_wgs84(lat, lon)
    return lat, lon


def form_values(form: Submitted) -> dict[str, Any]:
    """What to put back into a re-rendered form (repeatable names as lists)."""
    return {
        k: (v if len(v) > 1 or k in ("copy_orgs", "departments") else v[0])
        for k, v in form.values.items()
    }
