"""The standard workflow every case type uses unless it declares its own (标准事件处置流程).

上报 → 受理/不予受理 → 派遣/交办 → 处置 → 反馈 → 核查(通过/返工) → 结案 → 评价/重开, with the side
actions 自行处置, 上报上级, 回退, 抄告, 延期申请/审批, 督办, 催办, 挂起/恢复 (DOMAIN.md §4).
"""

from __future__ import annotations

from yiwang.cases.workflow import Action, CaseType, FormField, State, Workflow

ACTIVE = ("reported", "accepted", "dispatched", "handling", "verifying", "verified")
AT_HANDLER = ("dispatched", "handling")

STATES = (
    State("reported", "待受理", clock="accept"),
    State("accepted", "待派遣", clock="handle"),
    State("dispatched", "待处置", clock="handle"),
    State("handling", "处置中", clock="handle"),
    State("verifying", "待核查"),
    State("verified", "待结案"),
    State("suspended", "已挂起"),
    State("closed", "已结案", terminal=True),
    State("rejected", "不予受理", terminal=True),
)

RATING = (("5", "非常满意"), ("4", "满意"), ("3", "基本满意"), ("2", "不满意"), ("1", "非常不满意"))
SUPERVISION = (("normal", "一般督办"), ("yellow", "黄牌督办"), ("red", "红牌督办"))

ACTIONS = (
    Action("accept", "受理", ("reported",), "accepted", "cases.accept", effect="accept"),
    Action("reject", "不予受理", ("reported",), "rejected", "cases.accept", opinion=True),
    Action("self_handle", "自行处置", ("reported",), "verifying", "cases.handle", opinion=True,
           reporter_only=True, effect="feedback"),
    Action("escalate", "上报上级", ("reported", "accepted"), "reported", "cases.accept", opinion=True,
           route="up", primary=False),
    Action("dispatch", "派遣", ("accepted",), "dispatched", "cases.dispatch", route="down",
           effect="dispatch"),
    Action("take", "签收", ("dispatched",), "handling", "cases.handle", effect="assign_self"),
    Action("feedback", "处置反馈", AT_HANDLER, "verifying", "cases.handle", opinion=True,
           route="back", effect="feedback"),
    Action("send_back", "回退", AT_HANDLER, "accepted", "cases.handle", opinion=True, route="back",
           primary=False),
    Action("verify_pass", "核查通过", ("verifying",), "verified", "cases.verify"),
    Action("verify_fail", "返工", ("verifying",), "dispatched", "cases.verify", opinion=True,
           route="back", effect="rework"),
    Action("close", "结案", ("verified",), "closed", "cases.close", effect="close"),
    Action("close_special", "特殊结案", ACTIVE, "closed", "cases.close", opinion=True,
           effect="close_special", primary=False),
    Action("rate", "评价", ("closed",), "", "cases.rate", effect="rate",
           fields=(FormField("rating", "满意度", "choice", choices=RATING),)),
    Action("reopen", "重开", ("closed",), "accepted", "cases.reopen", opinion=True, effect="reopen"),
    Action("copy", "抄告", ACTIVE, "", "cases.dispatch", route="copy", effect="copy", primary=False),
    Action("extend_request", "申请延期", AT_HANDLER, "", "cases.handle", opinion=True,
           effect="extend_request", primary=False,
           fields=(FormField("days", "延期天数（工作日）", "int", min=1, max=30),)),
    Action("extend_approve", "批准延期", AT_HANDLER, "", "cases.extend", effect="extend_approve",
           primary=False),
    Action("extend_reject", "驳回延期", AT_HANDLER, "", "cases.extend", opinion=True,
           effect="extend_reject", primary=False),
    Action("supervise", "督办", ACTIVE, "", "cases.supervise", opinion=True, effect="supervise",
           primary=False, fields=(FormField("level", "督办级别", "choice", choices=SUPERVISION),)),
    Action("urge", "催办", ACTIVE, "", "cases.supervise", opinion=True, effect="urge", primary=False),
    Action("suspend", "挂起", ACTIVE, "suspended", "cases.suspend", opinion=True, effect="suspend",
           primary=False),
    Action("resume", "恢复", ("suspended",), "@previous", "cases.suspend", effect="resume"),
)  # fmt: skip

STANDARD = Workflow("standard", "标准处置流程", STATES, ACTIONS, initial="reported")

#: The kernel's own case types: the general catch-all every deployment needs; modules add theirs.
KERNEL_TYPES = (
    CaseType("general", "其他事件", category="综合"),
    CaseType("public_facility", "公共设施损坏", category="城市管理"),
    CaseType("environment", "环境卫生", category="城市管理"),
    CaseType("safety_hazard", "安全隐患", category="公共安全"),
    CaseType("dispute", "矛盾纠纷", category="矛盾纠纷"),
    CaseType("petition", "群众诉求", category="综合"),
)
