"""``yiwang demo``: the kernel's demo net first, then each plugin's demo data in dependency order."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from yiwang.plugins.host import KERNEL

if TYPE_CHECKING:
    from yiwang.kernel import Kernel


def run(
    kernel: Kernel, *, scale: str, seed: int, progress: Callable[[str], None] = lambda _: None
) -> list[str]:
    """Call every ``yiwang_demo`` implementation, each in its own transaction.

    The kernel's runs first (it builds the net the others fill); plugins follow in dependency
    order, so a plugin finds its requirements' demo data. Returns the names called, in order.
    """
    kernel.sync_declarations()  # roles must exist before demo accounts are assigned them
    impls = {i.plugin_name: i for i in kernel.host.hook.yiwang_demo.get_hookimpls()}
    called = []
    for name in [KERNEL, *kernel.host.specs]:
        impl = impls.get(name)
        if impl is None:
            continue
        with kernel.db.write() as session:
            args = {"kernel": kernel, "session": session, "scale": scale, "seed": seed}
            impl.function(**{a: args[a] for a in impl.argnames})
        called.append(name)
        progress(name)
    return called
