"""Principal: who is making a request, their role assignments and current jurisdiction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from yiwang.grid.tree import NodeRow
from yiwang.rbac.authz import Grant


@dataclass(frozen=True)
class Principal:
    """The authenticated user of a request.

    ``grants`` are every role assignment the user holds; ``current`` is the one they are
    working in (辖区), chosen in the top bar when they hold several.
    """

    user_id: int
    username: str
    display_name: str
    grants: tuple[Grant, ...]
    current: Grant | None
    #: The row of each granted node, read with the grants (so the request's default node needs
    #: no query of its own); may be empty.
    nodes: Mapping[int, NodeRow] = field(default_factory=dict, compare=False, hash=False)
    #: How the request authenticated: "session" (cookie) or "token" (phone API).
    via: str = "session"
    session_id: str = ""
    csrf_token: str = ""
    must_change_password: bool = False
    second_factor_pending: bool = False
    #: A role of the user requires TOTP (``auth.totp_required_roles``) and none is set up yet.
    totp_setup_required: bool = False
    extra: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def jurisdiction_path(self) -> str | None:
        return self.current.node_path if self.current else None

    @property
    def role(self) -> str:
        return self.current.role if self.current else ""

    @property
    def name(self) -> str:
        return self.display_name or self.username
