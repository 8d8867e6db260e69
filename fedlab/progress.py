"""Progress bars that read the same live and in a saved notebook.

In a terminal, :func:`progress_bar` is tqdm's text bar on stderr. In a Jupyter kernel (JupyterLab, VS Code,
papermill) it is the same text bar drawn into one output that is *updated in place* (a display
handle), instead of tqdm's ipywidgets bar: a widget is saved in the ``.ipynb`` as the text of its first
frame ("0%| | 0/30"), so a notebook saved or executed without widget state would show every run as
never started. The updated output holds what the bar last showed: its final frame
("FedAvg: 100%|████| 30/30 [00:49<00:00]") with ``leave=True``, nothing with ``leave=False`` (the run's
summary line printed after it says what happened). ``TQDM_DISABLE=1`` and ``disable=True`` switch bars
off as in tqdm.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

from tqdm.std import tqdm as text_tqdm


def in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (where outputs can be updated in place)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the notebooks extra
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


class _Discard(io.StringIO):
    """tqdm's own writes (carriage returns, cursor moves) go nowhere: the display handle shows the bar."""

    def write(self, s: str) -> int:
        return len(s)


class NotebookBar(text_tqdm):
    """tqdm's text bar rendered into one Jupyter output updated in place.

    The output shows the latest frame while the loop runs; after it ends, the final frame
    (``leave=True``) or nothing (``leave=False``), as tqdm does in a terminal.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._handle = None
        kwargs.setdefault("file", _Discard())
        kwargs.setdefault("ascii", False)
        kwargs.setdefault("ncols", 100)
        super().__init__(*args, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        """Draw the current frame, or ``msg`` (tqdm passes "" to clear a ``leave=False`` bar)."""
        from IPython.display import display

        text = self.__str__() if msg is None else msg
        bundle = {"text/plain": text}
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)
        return True

    def clear(self, nolock: bool = False) -> None:
        """Nothing to clear: the bar lives in its own output, not between lines of text."""

    def moveto(self, n: int) -> None:
        """No cursor to move in an output."""


def progress_bar(iterable: Iterable | None = None, **kwargs: Any) -> text_tqdm:
    """A tqdm progress bar: :class:`NotebookBar` in a Jupyter kernel, tqdm's text bar elsewhere.

    Args:
        iterable: What to iterate over (or None, with ``total=`` and manual ``update``).
        **kwargs: tqdm's arguments (``desc``, ``total``, ``leave``, ``disable``, ``mininterval``, ...).
    """
    cls = NotebookBar if in_notebook() else text_tqdm
    return cls(iterable, **kwargs)
