"""A hypothesis state machine: random grant / revoke / assign / reassign (move a user) /
disable / enable steps against a plain reference model; after every step every decision of the
real kernel (users × permissions × nodes) equals the model's."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import delete, update

from yiwang.auth import service
from yiwang.auth.models import User
from yiwang.rbac.models import Assignment
from yiwang.testing.database import clean
from yiwang.testing.factories import GridFactory
from yiwang.testing.users import Users

NODES = ["45", "4501", "4502", "450107", "450108", "450202", "45010700100101"]
ROLES = ["county_staff", "grid_worker", "leader"]
PERMS = ["grid.view", "users.view", "privacy.reveal"]
USERS = 3


def is_within(code: str, ancestor: str) -> bool:
    """Codes are hierarchical in this tree, so the prefix is the ancestry."""
    return code.startswith(ancestor)


@pytest.mark.sqlite_only
def test_decisions_follow_a_reference_model(yiwang_db: Any, settings: Any) -> None:
    from yiwang.kernel import Kernel

    db = yiwang_db

    class Machine(RuleBasedStateMachine):
        @initialize()
        def setup(self) -> None:
            clean(db)
            self.kernel = Kernel(settings, db=db)
            self.kernel.sync_declarations()
            grid = GridFactory(self.kernel)
            self.nodes = {code: grid.node(code) for code in NODES}
            with self.kernel.db.write() as s:  # start from no grants at all for the roles under test
                for role in ROLES:
                    for perm in PERMS:
                        self.kernel.authz.revoke(s, role, perm)
            self.kernel.authz.reload()
            users = Users(self.kernel)
            self.users = [users.make("leader", "45").id for _ in range(USERS)]
            with self.kernel.db.write() as s:
                s.execute(delete(Assignment))
            self.model_grants: set[tuple[str, str]] = set()
            self.model_assign: set[tuple[int, str, str]] = set()
            self.model_active = {u: True for u in self.users}

        @rule(role=st.sampled_from(ROLES), perm=st.sampled_from(PERMS))
        def grant(self, role: str, perm: str) -> None:
            with self.kernel.db.write() as s:
                self.kernel.authz.grant(s, role, perm)
            self.kernel.authz.check_epoch()
            self.model_grants.add((role, perm))

        @rule(role=st.sampled_from(ROLES), perm=st.sampled_from(PERMS))
        def revoke(self, role: str, perm: str) -> None:
            with self.kernel.db.write() as s:
                self.kernel.authz.revoke(s, role, perm)
            self.kernel.authz.check_epoch()
            self.model_grants.discard((role, perm))

        @rule(u=st.integers(0, USERS - 1), role=st.sampled_from(ROLES), node=st.sampled_from(NODES))
        def assign(self, u: int, role: str, node: str) -> None:
            uid = self.users[u]
            if (uid, role, node) in self.model_assign:
                return
            with self.kernel.db.write() as s:
                s.add(Assignment(user_id=uid, role=role, node_id=self.nodes[node].id))
            self.model_assign.add((uid, role, node))

        @rule(u=st.integers(0, USERS - 1), node=st.sampled_from(NODES))
        def move_user(self, u: int, node: str) -> None:
            """Reassign every role of a user to another node (the user moved)."""
            uid = self.users[u]
            mine = {(r, n) for (x, r, n) in self.model_assign if x == uid}
            with self.kernel.db.write() as s:
                s.execute(delete(Assignment).where(Assignment.user_id == uid))
                for role in {r for r, _ in mine}:
                    s.add(Assignment(user_id=uid, role=role, node_id=self.nodes[node].id))
            self.model_assign = {a for a in self.model_assign if a[0] != uid} | {
                (uid, r, node) for r in {r for r, _ in mine}
            }

        @rule(u=st.integers(0, USERS - 1))
        def unassign_all(self, u: int) -> None:
            uid = self.users[u]
            with self.kernel.db.write() as s:
                s.execute(delete(Assignment).where(Assignment.user_id == uid))
            self.model_assign = {a for a in self.model_assign if a[0] != uid}

        @rule(u=st.integers(0, USERS - 1))
        def disable(self, u: int) -> None:
            uid = self.users[u]
            with self.kernel.db.write() as s:
                service.disable_user(s, s.get(User, uid))
            self.model_active[uid] = False

        @rule(u=st.integers(0, USERS - 1))
        def enable(self, u: int) -> None:
            uid = self.users[u]
            with self.kernel.db.write() as s:
                s.execute(update(User).where(User.id == uid).values(active=True))
            self.model_active[uid] = True

        @invariant()
        def decisions_agree(self) -> None:
            if not hasattr(self, "kernel"):
                return
            with self.kernel.db.read() as s:
                real_grants = {uid: service.grants_of(s, uid) for uid in self.users}
                active = {uid: s.get(User, uid).active for uid in self.users}
            for uid in self.users:
                for perm in PERMS:
                    for code in NODES:
                        real = active[uid] and self.kernel.authz.allowed(
                            real_grants[uid], perm, self.nodes[code].path
                        )
                        model = self.model_active[uid] and any(
                            x == uid and (role, perm) in self.model_grants and is_within(code, at)
                            for (x, role, at) in self.model_assign
                        )
                        assert real == model, (uid, perm, code)

    Machine.TestCase.settings = hsettings(
        max_examples=12,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    Machine.TestCase().runTest()
