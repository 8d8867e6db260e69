"""``flower-supernode`` with a shorter idle poll: ``python -m fedlab.deploy.supernode [its arguments]``.

A stock SuperNode that finds no message for it sleeps 3 s before asking its SuperLink again (and 0.5 s
between checks for its ClientApp's reply), so every round of a deployment waits up to 3 s per message for
nothing. This wrapper caps those sleeps at ``$FEDLAB_SUPERNODE_POLL`` seconds (default 0.2) and then runs
Flower's own SuperNode. It replaces a module-level name inside Flower, so it checks the Flower version and
that name first, and otherwise runs the stock SuperNode unchanged (with a warning).
"""

from __future__ import annotations

import os
import sys
import time

POLL_ENV = "FEDLAB_SUPERNODE_POLL"
#: Flower releases whose SuperNode loop this wrapper was written against (major.minor).
TESTED_FLOWER = ("1.42",)


class _CappedClock:
    """The ``time`` module, except that ``sleep`` sleeps at most ``cap`` seconds."""

    def __init__(self, cap: float) -> None:
        self.cap = cap

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        time.sleep(min(seconds, self.cap))


def patch(cap: float) -> tuple[bool, str]:
    """Cap the SuperNode loop's sleeps at ``cap`` seconds; returns whether it did, and why not."""
    import flwr

    if ".".join(flwr.__version__.split(".")[:2]) not in TESTED_FLOWER:
        return False, f"flwr {flwr.__version__} is not a tested release ({', '.join(TESTED_FLOWER)})"
    try:
        import flwr.supernode.start_client_internal as loop
    except ImportError as err:
        return False, f"Flower's SuperNode loop moved: {err}"
    if getattr(loop, "time", None) is not time:
        return False, "Flower's SuperNode loop no longer uses the time module by that name"
    loop.time = _CappedClock(cap)
    return True, ""


def main() -> None:
    """Patch (or warn), then run Flower's ``flower-supernode`` with this process's arguments."""
    cap = float(os.environ.get(POLL_ENV, "0.2"))
    ok, why = patch(cap)
    if not ok:
        print(f"fedlab.deploy.supernode: running the stock SuperNode (3 s idle poll): {why}", file=sys.stderr)
    from flwr.supernode.cli import flower_supernode

    sys.argv[0] = "flower-supernode"
    flower_supernode()


if __name__ == "__main__":
    main()
