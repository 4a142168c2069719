"""The case engine: the only code that creates cases and applies transitions (事件流转).

``report`` makes a case from any channel (idempotent per channel message); ``act`` applies one
action of the case's workflow version: it checks the state, the permission at the holding
organisation's node, the action's required inputs and the plugins' guards, then changes the
case with a compare-and-set on its ``version`` so two people acting at once cannot both win, and
writes the timeline step, the audit record, statistics and notifications in the same
transaction. Plugins hear of the change after commit (``yiwang_case_changed``).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from yiwang import stats
from yiwang.audit import Actor
from yiwang.audit import record as audit
from yiwang.cases import events, tallies
from yiwang.cases.models import CHANNELS, SCALE, URGENCY, Case, CaseCopy, CaseStep
from yiwang.cases.routing import OrgRow, departments_near, holder_at, org, parent_holder, route
from yiwang.cases.workflow import PREVIOUS, Action, CaseType, FormField, Workflow
from yiwang.errors import Conflict, Forbidden, NotFound, ValidationError
from yiwang.files import PreparedFile
from yiwang.grid import tree
from yiwang.grid.geo import gcj02_to_wgs84
from yiwang.grid.levels import Level
from yiwang.grid.models import Node
from yiwang.pinyin import pinyin_initials
from yiwang.rbac.models import Assignment

if TYPE_CHECKING:
    from yiwang.kernel import Kernel
    from yiwang.rbac.authz import Grant

log = logging.getLogger("yiwang.cases")
CASE = Case.__table__  # type: ignore[attr-defined]
STEP = CaseStep.__table__  # type: ignore[attr-defined]
COPY = CaseCopy.__table__  # type: ignore[attr-defined]
NODE = Node.__table__  # type: ignore[attr-defined]
ASSIGNMENT = Assignment.__table__  # type: ignore[attr-defined]
STATE_INDICATOR = "cases.state"


#: Effects whose "back" route keeps the case where it is when no other unit sent it here (a
#: unit that assigned the case to its own staff verifies their feedback itself).
STAYS_WITHOUT_SENDER = ("feedback", "rework")
CONFLICT_MESSAGE = "该事件已被他人处理，请刷新后查看最新状态"


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """Database datetimes come back naive on SQLite; they are UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@dataclass(frozen=True)
class Doer:
    """Who acts: the audit actor and their grants (None: the platform itself, e.g. the clock)."""

    actor: Actor
    grants: tuple[Grant, ...] | None
    name: str

    @property
    def user_id(self) -> int | None:
        return self.actor.user_id

    @classmethod
    def system(cls, name: str = "system") -> Doer:
        return cls(Actor.system(name), None, "系统")


@dataclass(frozen=True)
class StepRef:
    """The timeline step an action wrote (``CaseStep`` row id, number, action)."""

    id: int
    seq: int
    action: str


@dataclass
class Upload:
    filename: str
    data: bytes


@dataclass
class ActionInput:
    """What the user submitted with an action."""

    opinion: str = ""
    target_org: int | None = None
    #: A person to assign (派给网格员 / 承办人): in the target unit's area, or the holder's.
    assignee: int | None = None
    copy_orgs: Sequence[int] = ()
    fields: Mapping[str, str] = field(default_factory=dict)
    files: Sequence[Upload | PreparedFile] = ()


@dataclass
class NewCase:
    """A report (上报) from any channel."""

    case_type: str
    title: str
    node_id: int
    channel: str
    description: str = ""
    channel_key: str | None = None
    lat: float | None = None
    lon: float | None = None
    #: Coordinate system of lat/lon: "wgs84" (GPS, CGCS2000) or "gcj02" (Chinese map pickers, WeChat).
    coord: str = "wgs84"
    address: str = ""
    urgency: str = "normal"
    scale: str = "small"
    reporter_name: str = ""
    reporter_phone: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    files: Sequence[Upload | PreparedFile] = ()


# --- permissions ---------------------------------------------------------------------------------


def may(kernel: Kernel, doer: Doer, permission: str, path: str | None) -> bool:
    return doer.grants is None or kernel.authz.allowed(doer.grants, permission, path)


def may_view(kernel: Kernel, session: Session, doer: Doer, case: Case) -> bool:
    """Viewers: the occurrence node's chain, the holding organisation's chain, copied units."""
    if doer.grants is None:
        return True
    for path in (case.node_path, case.org_path):
        if kernel.authz.allowed(doer.grants, "cases.view", path):
            return True
    copies = session.execute(select(COPY.c.org_path).where(COPY.c.case_id == case.id)).scalars()
    return any(kernel.authz.allowed(doer.grants, "cases.view", p) for p in copies)


def may_act(kernel: Kernel, doer: Doer, action: Action, case: Case) -> bool:
    """May ``doer`` take ``action`` on ``case``?

    The permission is checked at the holding unit's node; for an action only the reporter may
    take (自行处置) at the occurrence node the reporter patrols. The person the case is assigned
    to (承办人, e.g. a grid worker below the station) may act where one of their own roles
    inside the holding unit's area grants the permission.
    """
    if doer.grants is None:
        return True
    if action.reporter_only:
        return case.reporter_id == doer.user_id and kernel.authz.allowed(
            doer.grants, action.permission, case.node_path
        )
    if kernel.authz.allowed(doer.grants, action.permission, case.org_path):
        return True
    if case.assignee_id is not None and case.assignee_id == doer.user_id:
        inside = [g for g in doer.grants if g.node_path.startswith(case.org_path)]
        return kernel.authz.allowed(inside, action.permission, None)
    return False


def workflow_of(kernel: Kernel, session: Session, case: Case) -> Workflow:
    return kernel.cases.definition(session, case.workflow, case.workflow_version)


def available(kernel: Kernel, session: Session, doer: Doer, case: Case) -> list[Action]:
    """The actions ``doer`` may take on ``case`` now (buttons and API ``actions``).

    Reads only the case's workflow and version, state, extension, rating, reporter, assignee
    and paths, so a list row carrying those columns (``queries.ACTION_COLUMNS``) serves too."""
    wf = workflow_of(kernel, session, case)
    out = []
    for a in wf.actions_from(case.state):
        if a.effect in ("extend_approve", "extend_reject") and not case.extension_days:
            continue
        if a.effect == "extend_request" and case.extension_days:
            continue
        if a.effect == "rate" and case.rating is not None:
            continue
        if may_act(kernel, doer, a, case):
            out.append(a)
    return out


# --- values --------------------------------------------------------------------------------------


def _clean(
    value: str, limit: int, what: str, problems: list[str], *, required: bool = False
) -> str:
    value = (value or "").strip()
    if required and not value:
        problems.append(f"请填写{what}")
    if len(value) > limit:
        problems.append(f"{what}不能超过 {limit} 个字")
    return value


def form_values(
    fields: Sequence[FormField], given: Mapping[str, str], problems: list[str]
) -> dict[str, Any]:
    """Validate the extra inputs of an action or a case type; Chinese problems."""
    out: dict[str, Any] = {}
    for f in fields:
        raw = str(given.get(f.name, "") or "").strip()
        if not raw:
            if f.required:
                problems.append(f"请填写{f.label}")
            continue
        if f.kind == "int":
            try:
                number = int(raw)
            except ValueError:
                problems.append(f"{f.label}应为整数")
                continue
            if (f.min is not None and number < f.min) or (f.max is not None and number > f.max):
                problems.append(f"{f.label}应在 {f.min}–{f.max} 之间")
                continue
            out[f.name] = number
        elif f.kind == "choice":
            if raw not in {c for c, _ in f.choices}:
                problems.append(f"{f.label}的取值无效: {raw}")
                continue
            out[f.name] = raw
        else:
            if len(raw) > 500:
                problems.append(f"{f.label}不能超过 500 个字")
                continue
            out[f.name] = raw
    return out


def _calendar(kernel: Kernel, path: str) -> Any:
    from yiwang.calendar import calendar_for

    return calendar_for(kernel, path)


def _clock_values(
    kernel: Kernel, ct: CaseType, clock: str, holder_level: int, path: str, now: datetime
) -> dict[str, Any]:
    """A fresh clock: its start, time limit (due) and yellow/red card instants."""
    if not clock:
        return {"clock": "", "clock_started_at": None, "due_at": None, "yellow_at": None,
                "red_at": None, "card": "", "overdue": False}  # fmt: skip
    cal = _calendar(kernel, path)
    lim = ct.limits
    if clock == "accept":
        due, yellow, red = lim.accept_days, lim.accept_yellow, lim.accept_red
    else:
        due, yellow, red = lim.handle_for(holder_level), lim.handle_yellow, lim.handle_red
    return {
        "clock": clock, "clock_started_at": now, "due_at": cal.deadline(now, due),
        "yellow_at": cal.deadline(now, yellow), "red_at": cal.deadline(now, red),
        "card": "", "overdue": False,
    }  # fmt: skip


def stat_key(state: str) -> str:
    from yiwang.cases.standard import STATES

    return state if state in {s.name for s in STATES} else "other"


# --- reporting -----------------------------------------------------------------------------------


def report(
    kernel: Kernel, session: Session, doer: Doer, new: NewCase, *, now: datetime | None = None
) -> tuple[Case, bool]:
    """Create a case (or find the one this channel message already created).

    Returns ``(case, created)``. Raises ValidationError listing every problem, Forbidden when
    the reporter may not report at that node.
    """
    now = now or utcnow()
    if new.channel_key:
        found = by_channel_key(session, new.channel, new.channel_key)
        if found is not None:
            return retried_case(kernel, session, doer, found), False
    problems: list[str] = []
    ct = kernel.cases.types.get(new.case_type)
    if ct is None:
        problems.append(f"事件类型无效: {new.case_type}")
    title = _clean(new.title, 120, "标题", problems, required=True)
    description = _clean(new.description, 4000, "事件描述", problems)
    address = _clean(new.address, 200, "地址", problems)
    reporter_name = _clean(new.reporter_name, 60, "反映人姓名", problems)
    if new.channel not in CHANNELS:
        problems.append(f"来源渠道无效: {new.channel}")
    if new.channel_key is not None and not (0 < len(new.channel_key) <= 100):
        problems.append("幂等键长度应为 1–100")
    if new.urgency not in URGENCY:
        problems.append(f"紧急程度无效: {new.urgency}")
    if new.scale not in SCALE:
        problems.append(f"规模无效: {new.scale}")
    lat, lon = new.lat, new.lon
    if (lat is None) != (lon is None):
        problems.append("经纬度须同时提供")
    elif lat is not None and lon is not None:
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            problems.append("经纬度超出范围")
        elif new.coord == "gcj02":
            lat, lon = gcj02_to_wgs84(lat, lon)
        elif new.coord != "wgs84":
            problems.append(f"坐标系无效: {new.coord}（应为 wgs84 或 gcj02）")
    phone = (new.reporter_phone or "").strip() or None
    if phone is not None and not (phone.replace("-", "").isdigit() and 7 <= len(phone) <= 20):
        problems.append("反映人电话格式不正确")
    extra = form_values(ct.fields, new.extra, problems) if ct else {}
    node = session.get(Node, new.node_id)
    if node is None:
        problems.append("事发网格不存在")
    if problems:
        raise ValidationError("上报信息有误", problems)
    assert ct is not None and node is not None
    if not may(kernel, doer, "cases.report", node.path):
        raise Forbidden("没有在该网格上报事件的权限")
    wf_name = ct.workflow
    version = kernel.cases.current_version(session, wf_name)
    wf = kernel.cases.definition(session, wf_name, version)
    r = route(session, node.path, ct.name, new.urgency, new.scale)
    holder = holder_at(session, node.path, r.level)
    org_path = holder.path if holder else node.path
    initial = wf.state(wf.initial)
    values: dict[str, Any] = {
        "serial": "t" + uuid.uuid4().hex[:24],  # replaced by the real serial once the id is known
        "case_type": ct.name, "workflow": wf_name, "workflow_version": version,
        "title": title, "title_initials": pinyin_initials(title), "description": description, "channel": new.channel,
        "channel_key": new.channel_key, "reporter_id": doer.user_id,
        "reporter_name": reporter_name or (doer.name if doer.grants is not None else ""),
        "reporter_phone": phone, "node_id": node.id, "node_path": node.path,
        "lat": lat, "lon": lon, "address": address, "urgency": new.urgency, "scale": new.scale,
        "state": initial.name, "org_id": holder.id if holder else None, "org_path": org_path,
        "extra": json.dumps(extra, ensure_ascii=False), "created_at": now, "updated_at": now,
        **_clock_values(kernel, ct, initial.clock, holder.level if holder else node.level, node.path, now),
    }  # fmt: skip
    case = Case(**values)
    try:
        with session.begin_nested():
            session.add(case)
            session.flush()
    except IntegrityError:
        if new.channel_key:
            found = by_channel_key(session, new.channel, new.channel_key)
            if found is not None:
                return retried_case(kernel, session, doer, found), False
        raise
    local = now.astimezone(_tz())
    case.serial = f"{local:%Y%m%d}{case.id:08d}"
    copies = departments_near(session, org_path, r.copy_departments)
    _copy(session, case, copies, now)
    data: dict[str, Any] = {"route_level": r.level, "rule": r.rule_id}
    if copies:
        data["copied"] = [o.name for o in copies]
    step = _step(
        session, case, "report", "上报", "", initial.name, None, holder, doer,
        new.description[:500], data, case.created_at, now, seq=1,
    )  # fmt: skip
    _store_files(kernel, session, case, step, new.files, doer)
    session.flush()
    stats.add(session, STATE_INDICATOR, node.path, stat_key(initial.name))
    tallies.track(session, node.path, None, tallies.Snapshot.of(case))
    audit(session, "cases.report", actor=doer.actor, object_type="case", object_id=int(case.id or 0),
          detail={"serial": case.serial, "type": ct.name, "channel": new.channel, "node": node.code})  # fmt: skip
    _notify(kernel, session, case, step, "上报", recipients=_holder_users(kernel, session, case))
    events.queue(session, kernel, case, "report", step.id)
    return case, True


def retried_case(kernel: Kernel, session: Session, doer: Doer, case: Case) -> Case:
    """A retried report finds its case — but a key must not open someone else's case."""
    if not may_view(kernel, session, doer, case):
        raise Forbidden("该幂等键已被其他事件使用")
    return case


def by_channel_key(session: Session, channel: str, key: str) -> Case | None:
    return session.execute(
        select(Case).where(Case.channel == channel, Case.channel_key == key)  # type: ignore[arg-type]
    ).scalar_one_or_none()


def _tz() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Shanghai")


# --- acting --------------------------------------------------------------------------------------


def act(
    kernel: Kernel,
    session: Session,
    doer: Doer,
    case_id: int,
    action_name: str,
    given: ActionInput,
    *,
    version: int | None,
    now: datetime | None = None,
) -> StepRef:
    """Apply ``action_name`` to the case, as ``doer``, on the case ``version`` they saw.

    Raises Conflict when the case changed since (or changes concurrently), Forbidden without the
    permission, ValidationError for a missing opinion/target/field or a plugin's veto.
    """
    now = now or utcnow()
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"事件不存在: {case_id}")
    if version is not None and case.version != version:
        raise Conflict(CONFLICT_MESSAGE)
    wf = workflow_of(kernel, session, case)
    try:
        action = wf.action(action_name)
    except KeyError:
        raise ValidationError(f"流程中没有此操作: {action_name}") from None
    if not action.starts_from(case.state, wf.terminal):
        raise ValidationError(f"事件当前状态为「{wf.state(case.state).title}」，不能{action.title}")
    if not may_act(kernel, doer, action, case):
        raise Forbidden(f"没有权限{action.title}此事件")
    problems: list[str] = []
    opinion = _clean(given.opinion, 2000, "处理意见", problems, required=action.opinion)
    values = form_values(action.fields, given.fields, problems)
    if action.attachment and not given.files:
        problems.append("请上传附件（如处置照片）")
    ct = kernel.cases.case_type(case.case_type)
    current = org(session, case.org_id) if case.org_id else None
    target = _target(session, case, action, given, current, problems)
    copies = _copies(session, action, given, current, case, problems)
    _effect_preconditions(case, action, problems)
    if problems:
        raise ValidationError(f"无法{action.title}", problems)
    vetoes = _guards(kernel, session, case, action, given, doer)
    if vetoes:
        raise ValidationError(f"无法{action.title}", vetoes)

    old_state = case.state
    new_state = action.target or old_state
    if action.target == PREVIOUS:
        new_state = case.suspended_from or wf.initial
    changes: dict[str, Any] = {"state": new_state, "updated_at": now}
    data: dict[str, Any] = dict(values)
    holder = current
    if target is not None:
        holder = target
        changes |= {"org_id": target.id, "org_path": target.path, "assignee_id": None}
    moved = target is not None and (current is None or target.id != current.id)
    if action.route == "down" and given.assignee:
        changes["assignee_id"] = _check_assignee(
            kernel, session, given.assignee, holder, action, case
        )
        data["assignee"] = changes["assignee_id"]
    _apply_effect(kernel, case, action, doer, values, opinion, now, changes, data)
    new_clock = wf.state(new_state).clock
    if action.effect not in ("suspend", "resume", "extend_approve") and (
        new_clock != case.clock or (new_clock and moved) or action.effect in ("reopen", "rework")
    ):
        level = holder.level if holder else Level.COMMUNITY
        changes |= _clock_values(kernel, ct, new_clock, level, case.node_path, now)
    if wf.state(new_state).terminal:
        changes |= _clock_values(kernel, ct, "", 0, case.node_path, now)
    changes["version"] = case.version + 1
    before = tallies.Snapshot.of(case)
    result = session.execute(_CAS, {**changes, "cas_id": case.id, "cas_version": case.version})
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(CONFLICT_MESSAGE)
    last_seq, entered = _last_step(session, case)
    for key, value in changes.items():  # the row is written; keep the object in step without a reload
        set_committed_value(case, key, value)
    if copies:
        _copy(session, case, copies, now)
        data["copied"] = [o.name for o in copies]
    step = _step(
        session, case, action.name, action.title, old_state, new_state, current,
        holder if moved else current, doer, opinion, data, entered, now, seq=last_seq + 1,
    )  # fmt: skip
    _store_files(kernel, session, case, step, given.files, doer)
    if stat_key(old_state) != stat_key(new_state):
        stats.move(session, STATE_INDICATOR, stat_key(old_state), case.node_path, case.node_path,
                   new_key=stat_key(new_state))  # fmt: skip
    tallies.track(session, case.node_path, before, tallies.Snapshot.of(case))
    audit(session, f"cases.{action.name}", actor=doer.actor, object_type="case", object_id=int(case.id or 0),
          detail={"serial": case.serial, "from": old_state, "to": new_state,
                  "org": holder.name if moved and holder else None})  # fmt: skip
    recipients = (
        set(_holder_users(kernel, session, case)) if moved or action.effect == "urge" else set()
    )
    if case.reporter_id:
        recipients.add(case.reporter_id)
    if case.assignee_id:
        recipients.add(case.assignee_id)
    recipients.discard(doer.user_id or 0)
    _notify(kernel, session, case, step, action.title, recipients=sorted(recipients))
    if action.effect in CITIZEN_NEWS or action.name == "reject":
        _tell_citizen(kernel, session, case, action.title)
    events.queue(session, kernel, case, action.name, step.id)
    return step


def _target(
    session: Session,
    case: Case,
    action: Action,
    given: ActionInput,
    current: OrgRow | None,
    problems: list[str],
) -> OrgRow | None:
    from yiwang.cases.routing import check_target

    if action.route == "down":
        if not given.target_org:
            if given.assignee:
                return current  # assigned to a person of the holding unit's area
            problems.append("请选择承办单位或承办人")
            return None
        try:
            target = org(session, given.target_org)
        except NotFound:
            problems.append("承办单位不存在")
            return None
        if current is not None:
            try:
                check_target(current, target)
            except ValidationError as exc:
                problems.append(str(exc))
                return None
        elif not target.path.startswith(case.org_path):
            problems.append("只能派往辖区内的单位")
            return None
        return target
    if action.route == "up":
        base = current or holder_at(session, case.org_path, Level.COMMUNITY)
        up = parent_holder(session, base) if base else None
        if up is None:
            problems.append("已是最高一级，无法上报上级")
        return up
    if action.route == "back":
        back = _previous_holder(session, case)
        if back is None and action.effect not in STAYS_WITHOUT_SENDER:
            problems.append("没有可退回的单位")
        return back
    return None


def _check_assignee(
    kernel: Kernel,
    session: Session,
    user_id: int,
    holder: OrgRow | None,
    action: Action,
    case: Case,
) -> int:
    """An assignee must be able to handle the case where it now is: some role of theirs,
    assigned inside the holding unit's area, allows ``cases.handle``."""
    area = holder.path if holder else case.org_path
    rows = session.execute(
        select(ASSIGNMENT.c.role, NODE.c.path)
        .join_from(ASSIGNMENT, NODE, NODE.c.id == ASSIGNMENT.c.node_id)
        .where(ASSIGNMENT.c.user_id == user_id)
    ).all()
    for role, path in rows:
        if path.startswith(area) and kernel.authz.role_allows(role, "cases.handle"):
            return user_id
    raise ValidationError(f"无法{action.title}", ["承办人不在承办单位辖区内或没有处置权限"])


def _previous_holder(session: Session, case: Case) -> OrgRow | None:
    """The organisation that passed the case to its current holder."""
    row = session.execute(
        select(STEP.c.from_org_id)
        .where(STEP.c.case_id == case.id, STEP.c.to_org_id == case.org_id,
               STEP.c.from_org_id.is_not(None), STEP.c.from_org_id != STEP.c.to_org_id)
        .order_by(STEP.c.seq.desc()).limit(1)
    ).first()  # fmt: skip
    return org(session, row[0]) if row else None


def _copies(
    session: Session, action: Action, given: ActionInput, current: OrgRow | None, case: Case,
    problems: list[str],
) -> list[OrgRow]:
    """Units a case may be copied to (抄告): inside the holder's area, or a member department
    above it — never a unit outside the case's chain, which would open the case to it."""
    from yiwang.cases.routing import orgs

    if action.route != "copy":
        return []
    ids = list(dict.fromkeys(int(i) for i in given.copy_orgs))
    if not ids:
        problems.append("请选择抄告单位")
        return []
    found = orgs(session, ids)
    missing = [i for i in ids if i not in found]
    if missing:
        problems.append(f"抄告单位不存在: {missing}")
    area = current.path if current else case.org_path
    outside = [o.name for o in found.values()
               if not (o.path.startswith(area) or (o.kind == "department" and area.startswith(o.path)))]  # fmt: skip
    if outside:
        problems.append(f"不能抄告辖区以外的单位: {'、'.join(outside)}")
        return []
    return [found[i] for i in ids if i in found]


def _effect_preconditions(case: Case, action: Action, problems: list[str]) -> None:
    if action.effect == "extend_request" and case.extension_days:
        problems.append("已有待审批的延期申请")
    if action.effect in ("extend_approve", "extend_reject") and not case.extension_days:
        problems.append("没有待审批的延期申请")
    if action.effect == "rate" and case.rating is not None:
        problems.append("该事件已评价")


def _apply_effect(
    kernel: Kernel,
    case: Case,
    action: Action,
    doer: Doer,
    values: Mapping[str, Any],
    opinion: str,
    now: datetime,
    changes: dict[str, Any],
    data: dict[str, Any],
) -> None:
    effect = action.effect
    if effect == "accept":
        changes["accepted_at"] = now
    elif effect == "assign_self":
        changes["assignee_id"] = doer.user_id
    elif effect in ("close", "close_special"):
        changes["closed_at"] = now
        late = case.ever_overdue or case.overdue
        changes["close_type"] = (
            "special" if effect == "close_special" else ("overdue" if late else "normal")
        )
        data["close_type"] = changes["close_type"]
    elif effect == "rate":
        changes["rating"] = int(values["rating"])
    elif effect == "reopen":
        changes |= {"reopen_count": case.reopen_count + 1, "rating": None, "close_type": "",
                    "closed_at": None}  # fmt: skip
    elif effect == "rework":
        changes["rework_count"] = case.rework_count + 1
    elif effect == "supervise":
        changes["supervision"] = values["level"]
    elif effect == "extend_request":
        changes |= {"extension_days": int(values["days"]), "extension_reason": opinion[:500]}
    elif effect == "extend_approve":
        days = int(case.extension_days or 0)
        cal = _calendar(kernel, case.node_path)
        base = aware(case.due_at) or now
        due = cal.deadline(base, days)
        changes |= {
            "due_at": due,
            "overdue": due <= now,
            "extension_days": None,
            "extension_reason": "",
        }
        data["days"] = days
        data["due_at"] = due.isoformat()
    elif effect == "extend_reject":
        changes |= {"extension_days": None, "extension_reason": ""}
    elif effect == "suspend":
        changes |= {"suspended_from": case.state, "suspended_at": now}
    elif effect == "resume":
        changes |= {"suspended_from": "", "suspended_at": None}
        paused = aware(case.suspended_at)
        if paused is not None:
            cal = _calendar(kernel, case.node_path)
            for name in ("due_at", "yellow_at", "red_at"):
                when = aware(getattr(case, name))
                if when is not None and when > paused:
                    changes[name] = cal.deadline(now, cal.elapsed(paused, when))


def _guards(
    kernel: Kernel, session: Session, case: Case, action: Action, given: ActionInput, doer: Doer
) -> list[str]:
    at = events.NodeAt(case.node_id, case.node_path)
    results = kernel.hook_at(at).yiwang_case_guard(
        session=session, case=case, action=action.name, opinion=given.opinion, actor=doer.actor
    )
    reasons: list[str] = []
    for r in results:
        if r:
            reasons.extend([r] if isinstance(r, str) else list(r))
    return reasons


# Statements on every transition, built once (building a select() costs more than running it).
_LAST_STEP = (
    select(STEP.c.seq, STEP.c.finished_at).where(STEP.c.case_id == bindparam("case_id"))
    .order_by(STEP.c.seq.desc()).limit(1)
)  # fmt: skip
_INSERT_STEP = insert(STEP).returning(STEP.c.id)
#: The compare-and-set of a transition; the SET clause is the changed columns given with it.
_CAS = update(CASE).where(CASE.c.id == bindparam("cas_id"), CASE.c.version == bindparam("cas_version"))


def _last_step(session: Session, case: Case) -> tuple[int, datetime]:
    """The last step's number and when it finished (= when the case entered its state)."""
    last = session.execute(_LAST_STEP, {"case_id": case.id}).first()
    if last is None:
        return 0, aware(case.created_at) or utcnow()
    return int(last.seq), aware(last.finished_at) or utcnow()


def _step(
    session: Session,
    case: Case,
    action: str,
    title: str,
    from_state: str,
    to_state: str,
    from_org: OrgRow | None,
    to_org: OrgRow | None,
    doer: Doer,
    opinion: str,
    data: Mapping[str, Any],
    entered: datetime,
    now: datetime,
    *,
    seq: int | None = None,
) -> StepRef:
    if seq is None:
        last = session.execute(
            select(STEP.c.seq).where(STEP.c.case_id == case.id).order_by(STEP.c.seq.desc()).limit(1)
        ).scalar()
        seq = int(last or 0) + 1
    values = {
        "case_id": int(case.id or 0), "seq": seq, "action": action, "title": title,
        "from_state": from_state, "to_state": to_state, "from_org_id": from_org.id if from_org else None,
        "to_org_id": to_org.id if to_org else None, "actor_id": doer.user_id, "actor_name": doer.name[:60],
        "opinion": opinion, "data": json.dumps(data, ensure_ascii=False, default=str),
        "entered_at": entered, "finished_at": now,
    }  # fmt: skip
    # Core, not the ORM: a step is written once and never loaded back in this unit of work.
    step_id = session.execute(_INSERT_STEP, values).scalar_one()
    return StepRef(int(step_id), seq, action)


def _copy(session: Session, case: Case, copies: Sequence[OrgRow], now: datetime) -> None:
    if not copies:
        return
    have = set(session.execute(select(COPY.c.org_id).where(COPY.c.case_id == case.id)).scalars())
    rows = [{"case_id": case.id, "org_id": o.id, "org_path": o.path, "created_at": now}
            for o in copies if o.id not in have]  # fmt: skip
    if rows:
        session.execute(insert(COPY), rows)


def prepare_uploads(kernel: Kernel, files: Sequence[Upload | PreparedFile]) -> list[PreparedFile]:
    """Check and store upload bytes *before* the unit of work (decoding a photo is slow and, on
    SQLite, the write unit holds the database lock); raises FileRejected for a refused file."""
    from yiwang.files import prepare_file

    return [f if isinstance(f, PreparedFile) else prepare_file(kernel, data=f.data, filename=f.filename)
            for f in files]  # fmt: skip


def _store_files(
    kernel: Kernel,
    session: Session,
    case: Case,
    step: StepRef,
    files: Sequence[Upload | PreparedFile],
    doer: Doer,
) -> None:
    if not files:
        return
    from yiwang.files import attach_file

    for prepared in prepare_uploads(kernel, files):
        attach_file(
            session, prepared, owner_type="case", owner_id=int(case.id or 0), owner_ref=step.id,
            node_path=case.node_path, created_by=doer.user_id,
        )  # fmt: skip


def _holder_users(kernel: Kernel, session: Session, case: Case) -> list[int]:
    """Users assigned exactly at the holding organisation's node who may act on the case now."""
    node_id = tree.ancestor_ids(case.org_path)[-1]
    rows = session.execute(
        select(ASSIGNMENT.c.user_id, ASSIGNMENT.c.role).where(ASSIGNMENT.c.node_id == node_id)
    ).all()
    wf = workflow_of(kernel, session, case)
    perms = {a.permission for a in wf.actions_from(case.state)}
    return sorted({u for u, role in rows if any(kernel.authz.role_allows(role, p) for p in perms)})


#: Effects a citizen who reported by phone, WeChat or the web hears of by SMS (受理、办结).
CITIZEN_NEWS = ("accept", "close", "close_special")
CITIZEN_CHANNELS = ("wechat", "hotline", "sms", "public")
SMS = "sms_http"


def _tell_citizen(kernel: Kernel, session: Session, case: Case, what: str) -> None:
    """An SMS to a citizen reporter, when an SMS channel is configured. A number that is not a
    mobile (a landline given to 12345) is skipped — it never blocks the transition."""
    if case.channel not in CITIZEN_CHANNELS or not case.reporter_phone or SMS not in kernel.settings.notify.channels:
        return
    from yiwang import notify

    try:
        with session.begin_nested():
            notify.queue_address(
                session, kernel, channel=SMS, address=case.reporter_phone, subject=f"事件{what}",
                body=f"您反映的事件（编号 {case.serial}）已{what}。", event=f"cases.citizen.{what}",
                ref_type="case", ref_id=case.id,
            )  # fmt: skip
    except ValidationError:
        log.info("事件 %s 的反映人电话不是手机号码，未发送短信", case.serial)


def _notify(
    kernel: Kernel,
    session: Session,
    case: Case,
    step: StepRef,
    what: str,
    *,
    recipients: Sequence[int],
) -> None:
    if not recipients:
        return
    from yiwang import notify

    notify.queue(
        session, kernel, user_ids=recipients, subject=f"事件{what}：{case.title}"[:120],
        body=f"事件 {case.serial}「{case.title}」已{what}。", link=f"/cases/{case.id}",
        event=f"cases.{step.action}", ref_type="case", ref_id=case.id,
    )  # fmt: skip
