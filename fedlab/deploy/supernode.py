"""``flower-supernode`` with a shorter, adaptive poll: ``python -P fedlab/deploy/supernode.py [its arguments]``.

Run it as a script (as LocalDeployment does): it imports only Flower, so a SuperNode does not import fedlab and
torch (``python -m fedlab.deploy.supernode`` works too, at the cost of those imports).

A stock SuperNode that finds no message for it sleeps 3 s before asking its SuperLink again (and 0.5 s between
checks for its ClientApp's reply), so every round of a deployment waits up to 3 s per message for nothing. This
wrapper makes those sleeps adaptive: right after a message, the node polls every ``min`` seconds; while it stays
idle the interval grows by half at each poll up to ``max`` seconds, so an idle deployment costs little CPU and a
running one answers fast. ``$FEDLAB_SUPERNODE_POLL="min,max"`` (default ``"0.05,1.0"``). Then it runs Flower's
own SuperNode. It replaces a module-level name inside Flower, so it checks the Flower version and that name
first, and otherwise runs the stock SuperNode unchanged (with a warning).
"""

from __future__ import annotations

import os
import sys
import time

POLL_ENV = "FEDLAB_SUPERNODE_POLL"
#: Flower releases whose SuperNode loop this wrapper was written against (major.minor).
TESTED_FLOWER = ("1.42",)


class _AdaptiveClock:
    """The ``time`` module, except for ``sleep``: the SuperNode loop's idle waits (3 s) start at ``low`` seconds
    and grow by ``growth`` per idle poll up to ``high``; its waits for a reply (0.5 s) take ``low`` seconds and
    mark the node busy again (the next idle wait starts at ``low``)."""

    IDLE = 1.0  # the loop's sleeps of at least this long are idle polls (3 s in Flower 1.42)

    def __init__(self, low: float, high: float, growth: float = 1.5) -> None:
        self.low, self.high, self.growth = low, max(high, low), growth
        self.next = low

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        if seconds >= self.IDLE:
            wait, self.next = self.next, min(self.next * self.growth, self.high)
        else:
            wait, self.next = min(seconds, self.low), self.low
        time.sleep(wait)


def patch(low: float, high: float) -> tuple[bool, str]:
    """Make the SuperNode loop's sleeps adaptive (see :class:`_AdaptiveClock`); returns whether it did, and why not."""
    import flwr

    if ".".join(flwr.__version__.split(".")[:2]) not in TESTED_FLOWER:
        return False, f"flwr {flwr.__version__} is not a tested release ({', '.join(TESTED_FLOWER)})"
    try:
        import flwr.supernode.start_client_internal as loop
    except ImportError as err:
        return False, f"Flower's SuperNode loop moved: {err}"
    if getattr(loop, "time", None) is not time:
        return False, "Flower's SuperNode loop no longer uses the time module by that name"
    loop.time = _AdaptiveClock(low, high)
    return True, ""


def main() -> None:
    """Patch (or warn), then run Flower's ``flower-supernode`` with this process's arguments."""
    low, high = (float(x) for x in os.environ.get(POLL_ENV, "0.05,1.0").split(","))
    ok, why = patch(low, high)
    if not ok:
        print(f"fedlab.deploy.supernode: running the stock SuperNode (3 s idle poll): {why}", file=sys.stderr)
    from flwr.supernode.cli import flower_supernode

    sys.argv[0] = "flower-supernode"
    flower_supernode()


if __name__ == "__main__":
    main()
