"""Administration pages (系统管理): users and assignments, roles and grants, plugin activation
per node, the login log — each inside the administrator's own subtree.

Scope is enforced on the server, never by what a page happens to show:

- lists are filtered in SQL (``Authz.scope_filter`` on the assignment node's path);
- every object named by id (user, assignment, node, role) is checked with ``require`` against
  its node(s) before it is read or changed;
- acting on an *account* (disable, enable, reset password, unlock) needs the permission at every
  node where the account holds a role, and — for ``users.manage`` — every permission of those
  roles, so nobody takes over an account that can do more, or more widely, than they can;
- role grants change the policy of the whole platform, so ``roles.manage`` must hold at every root.

Every change is recorded in the audit trail (``admin.*`` actions).
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route


def routes() -> list[BaseRoute]:
    """The administration routes, mounted at the root by the kernel (``builtin.yiwang_routes``)."""
    from yiwang.admin import activation, roles, users

    return [
        Route("/admin/users", users.user_list, methods=["GET"], name="admin:users"),
        Route("/admin/users/new", users.user_new, methods=["GET"], name="admin:user_new"),
        Route("/admin/users/new", users.user_create, methods=["POST"], name="admin:user_create"),
        Route("/admin/users/{user_id:int}", users.user_detail, methods=["GET"], name="admin:user"),
        Route("/admin/users/{user_id:int}/assignments", users.assignment_add, methods=["POST"],
              name="admin:assign"),  # fmt: skip
        Route("/admin/users/{user_id:int}/assignments/{assignment_id:int}/delete", users.assignment_remove,
              methods=["POST"], name="admin:unassign"),  # fmt: skip
        Route("/admin/users/{user_id:int}/disable", users.user_disable, methods=["POST"], name="admin:disable"),
        Route("/admin/users/{user_id:int}/enable", users.user_enable, methods=["POST"], name="admin:enable"),
        Route("/admin/users/{user_id:int}/password", users.user_reset_password, methods=["POST"],
              name="admin:reset_password"),  # fmt: skip
        Route("/admin/users/{user_id:int}/unlock", users.user_unlock, methods=["POST"], name="admin:unlock"),
        Route("/admin/logins", users.login_log, methods=["GET"], name="admin:logins"),
        Route("/admin/roles", roles.role_list, methods=["GET"], name="admin:roles"),
        Route("/admin/roles", roles.role_create, methods=["POST"], name="admin:role_create"),
        Route("/admin/roles/{role:str}", roles.role_detail, methods=["GET"], name="admin:role"),
        Route("/admin/roles/{role:str}/grant", roles.role_grant, methods=["POST"], name="admin:grant"),
        Route("/admin/roles/{role:str}/revoke", roles.role_revoke, methods=["POST"], name="admin:revoke"),
        Route("/admin/plugins", activation.activation_page, methods=["GET"], name="admin:plugins"),
        Route("/admin/plugins/{plugin:str}", activation.activation_set, methods=["POST"],
              name="admin:plugin_set"),  # fmt: skip
    ]


__all__ = ["routes"]
