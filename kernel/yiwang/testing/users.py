"""Users and logins for tests: ``login(client, role="county_staff", node="450107")``."""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING, Any

from yiwang.auth import service
from yiwang.auth.models import User
from yiwang.rbac.models import Assignment
from yiwang.testing.factories import GridFactory

if TYPE_CHECKING:
    from yiwang.kernel import Kernel

#: A password that satisfies the default policy.
PASSWORD = "Kx9#mPq2!vLr"

_counter = itertools.count(1)
#: Password → its argon2 hash, computed once per test process.
_HASHES: dict[str, str] = {}


class Users:
    """Creates users with role assignments and logs them in through the real login form.

    Parameters
    ----------
    kernel: the kernel under test (its declared roles are synced on first use).
    """

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.grid = GridFactory(kernel)
        self._synced = False

    def _sync(self) -> None:
        if not self._synced:
            self.kernel.sync_declarations()
            self._synced = True

    def make(
        self,
        role: str = "province_staff",
        node: str = "45",
        *,
        username: str | None = None,
        password: str = PASSWORD,
        must_change_password: bool = False,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> User:
        """A user holding ``role`` at ``node`` (created with its ancestors when missing), plus
        ``extra`` (role, node) assignments."""
        self._sync()
        name = username or f"{role.replace('_', '')}{next(_counter)}"
        nodes = [(role, self.grid.node(node))] + [(r, self.grid.node(n)) for r, n in extra]
        with self.kernel.db.write() as s:
            cached = _HASHES.get(password)
            if cached is None:
                user = service.create_user(
                    s, self.kernel.settings.auth, username=name, password=password,
                    display_name=name, must_change_password=must_change_password,
                )  # fmt: skip
                _HASHES[password] = user.password_hash
            else:  # argon2 is slow on purpose; a factory need not pay it for every user
                user = User(username=name, display_name=name, password_hash=cached,
                            must_change_password=must_change_password)  # fmt: skip
                s.add(user)
                s.flush()
            for r, n in nodes:
                s.add(Assignment(user_id=user.id or 0, role=r, node_id=n.id or 0))
        return user

    def login(self, client: Any, username: str, password: str = PASSWORD) -> Any:
        """Log ``client`` in through GET/POST /login; returns the final response."""
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, "登录页缺少 CSRF 字段"
        return client.post(
            "/login", data={"username": username, "password": password, "csrf_token": token.group(1)}
        )

    def csrf(self, client: Any, path: str = "/grid/") -> str:
        """The CSRF token embedded in a page the logged-in client can see."""
        page = client.get(path)
        found = re.search(r'"X-CSRF-Token": "([^"]+)"', page.text)
        assert found, f"{path} 中没有 CSRF 令牌"
        return found.group(1)
