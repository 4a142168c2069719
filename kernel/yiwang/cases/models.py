"""Tables of the case lifecycle: cases, their timeline, workflow versions, routing rules."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from yiwang.grid.models import PATH_TYPE, utcnow
from yiwang.pinyin import INITIALS_TYPE
from yiwang.privacy.fields import personal_field, sensitive_field

#: Urgency (紧急程度) and scale (规模) codes with their Chinese names.
URGENCY = {"normal": "一般", "urgent": "紧急", "critical": "特急"}
SCALE = {"small": "一般", "large": "较大", "major": "重大"}
#: Intake channels (来源渠道).
CHANNELS = {
    "phone": "网格员手机",
    "web": "工作人员录入",
    "wechat": "微信公众号",
    "hotline": "12345 热线",
    "sms": "短信",
    "public": "群众网上反映",
    "platform": "其他平台推送",
}
CARDS = {"": "无", "yellow": "黄牌", "red": "红牌"}
SUPERVISION = {"": "无", "normal": "一般督办", "yellow": "黄牌督办", "red": "红牌督办"}
CLOSE_TYPES = {"normal": "正常结案", "overdue": "超期结案", "special": "特殊结案"}


class Case(SQLModel, table=True):
    """A case (事件): one row whatever the channel it came from.

    ``node_path`` is the occurrence node (usually a grid) and ``org_path`` the node of the
    organisation now handling it; lists are scoped on either, so a county department sees the
    cases it handles and a grid's chain sees what happens on its ground. ``version`` increases
    with every change: an action names the version it was taken on, and loses to any other
    change made since ("已被他人处理").
    """

    __tablename__ = "case_case"
    __table_args__ = (
        UniqueConstraint("channel", "channel_key", name="uq_case_channel_key"),
        Index("ix_case_node_path", "node_path"),
        Index("ix_case_org_state", "org_path", "state"),
        Index("ix_case_type_created", "case_type", "created_at"),
        Index("ix_case_clock", "state", "red_at"),
        # The to-do tab: its branch for what waits at a unit (states × holder subtree, with the
        # sort column, so counting and choosing the page read the index alone), its branches for
        # what is assigned to or reported by the user; and the overdue badge — each from an
        # index rather than by testing every open case.
        Index("ix_case_state_org", "state", "org_path", "updated_at"),
        Index("ix_case_assignee_state", "assignee_id", "state"),
        Index("ix_case_reporter_state", "reporter_id", "state"),
        Index("ix_case_overdue", "overdue"),
    )

    id: int | None = Field(default=None, primary_key=True)
    serial: str = Field(max_length=30, unique=True)
    case_type: str = Field(max_length=60)
    workflow: str = Field(max_length=60)
    workflow_version: int
    title: str = Field(max_length=120)
    #: Pinyin initials of the title, for the global search.
    title_initials: str = Field(default="", sa_column=Column(INITIALS_TYPE, nullable=False, server_default="", index=True))
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    channel: str = Field(max_length=20)
    #: The channel's message id (idempotency key): a retried submission finds the first case.
    channel_key: str | None = Field(default=None, max_length=100)
    reporter_id: int | None = Field(default=None, foreign_key="auth_user.id")
    reporter_name: str = personal_field("name", "反映人姓名", default="", max_length=60)
    reporter_phone: str | None = sensitive_field("phone", "反映人电话", default=None)
    node_id: int = Field(foreign_key="grid_node.id")
    node_path: str = Field(sa_column=Column(PATH_TYPE, nullable=False))
    lat: float | None = None
    lon: float | None = None
    address: str = Field(default="", max_length=200)
    urgency: str = Field(default="normal", max_length=10)
    scale: str = Field(default="small", max_length=10)
    state: str = Field(max_length=30)
    #: The state a suspended case returns to on resume.
    suspended_from: str = Field(default="", max_length=30)
    suspended_at: datetime | None = None
    org_id: int | None = Field(default=None, foreign_key="grid_org.id")
    org_path: str = Field(sa_column=Column(PATH_TYPE, nullable=False))
    assignee_id: int | None = Field(default=None, foreign_key="auth_user.id")
    #: The clock running now ("accept", "handle" or ""), when it started, and its instants.
    clock: str = Field(default="", max_length=10)
    clock_started_at: datetime | None = None
    due_at: datetime | None = None
    yellow_at: datetime | None = None
    red_at: datetime | None = None
    card: str = Field(default="", max_length=10)
    overdue: bool = False
    #: Was the case ever overdue (for 超期结案 and assessment).
    ever_overdue: bool = False
    supervision: str = Field(default="", max_length=10)
    extension_days: int | None = None
    extension_reason: str = Field(default="", max_length=500)
    rating: int | None = None
    close_type: str = Field(default="", max_length=10)
    reopen_count: int = 0
    rework_count: int = 0
    #: Case-type fields (JSON object).
    extra: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    version: int = 1
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    accepted_at: datetime | None = None
    closed_at: datetime | None = None


class CaseStep(SQLModel, table=True):
    """One step of a case's timeline (流转记录): who did what, from which unit to which."""

    __tablename__ = "case_step"
    __table_args__ = (UniqueConstraint("case_id", "seq", name="uq_case_step_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case_case.id")
    seq: int
    action: str = Field(max_length=40)
    title: str = Field(max_length=40)
    from_state: str = Field(default="", max_length=30)
    to_state: str = Field(max_length=30)
    from_org_id: int | None = Field(default=None, foreign_key="grid_org.id")
    to_org_id: int | None = Field(default=None, foreign_key="grid_org.id")
    actor_id: int | None = Field(default=None, foreign_key="auth_user.id")
    actor_name: str = Field(default="", max_length=60)
    opinion: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    #: Action form values and effects (JSON object): rating, days, copied organisations …
    data: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    #: When the case entered the state this step leaves, and when this step finished it.
    entered_at: datetime
    finished_at: datetime


class CaseCopy(SQLModel, table=True):
    """An organisation a case is copied to (抄告): it may view the case and is notified."""

    __tablename__ = "case_copy"
    __table_args__ = (UniqueConstraint("case_id", "org_id", name="uq_case_copy"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case_case.id")
    org_id: int = Field(foreign_key="grid_org.id", index=True)
    org_path: str = Field(sa_column=Column(PATH_TYPE, nullable=False, index=True))
    created_at: datetime = Field(default_factory=utcnow)


class WorkflowVersion(SQLModel, table=True):
    """Every distinct definition of a workflow ever declared, numbered per workflow."""

    __tablename__ = "case_workflow"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_case_workflow_version"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=60)
    version: int
    digest: str = Field(max_length=64)
    definition: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class RoutingRule(SQLModel, table=True):
    """A routing rule (分级流转规则) set at a node for its subtree.

    Matching (type, urgency, scale; empty = any) cases occurring below ``node_path`` go to the
    organisation at ``level`` above their grid, and are copied to the departments named.
    """

    __tablename__ = "case_routing_rule"
    __table_args__ = (
        UniqueConstraint("node_id", "case_type", "urgency", "scale", name="uq_case_routing_rule"),
    )

    id: int | None = Field(default=None, primary_key=True)
    node_id: int = Field(foreign_key="grid_node.id")
    node_path: str = Field(sa_column=Column(PATH_TYPE, nullable=False, index=True))
    case_type: str = Field(default="", max_length=60)
    urgency: str = Field(default="", max_length=10)
    scale: str = Field(default="", max_length=10)
    level: int
    #: Department codes (``Organisation.department``) to copy, comma-separated.
    copy_departments: str = Field(
        default="", sa_column=Column(String(200), nullable=False, default="")
    )
    note: str = Field(default="", max_length=200)
    updated_by: int | None = Field(default=None, foreign_key="auth_user.id")
    updated_at: datetime = Field(default_factory=utcnow)
