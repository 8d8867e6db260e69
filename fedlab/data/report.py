"""The result of checking a local copy of a dataset against its manifest: a per-site table, problems, subset notes.

*Problems* are things that are broken (a corrupt file, an image without a mask, a checksum mismatch, more files
than the manifest lists): the data cannot be used until they are fixed. *Subset notes* say that the copy holds
fewer sites or fewer files than the full release (a sample, a download in progress): the data can be used,
knowingly, and results are not comparable with those on the full dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fedlab.data.errors import DataError


@dataclass
class SiteRow:
    """One line of the verification table (``found`` is None for a site that is absent)."""

    site: str
    split: str
    expected: int | None
    found: int | None
    checked: int
    problems: int


@dataclass
class Report:
    """What :func:`fedlab.data.verify.verify` found.

    Attributes:
        name: Dataset name.
        root: The folder that was checked.
        layout: The manifest layout the folder was checked against.
        rows: One row per site and split.
        problems: Human-readable problems, each saying what to fix; empty when nothing is broken.
        subset: Human-readable notes on what is missing from the full dataset; empty for a complete copy.
        sites_found: The manifest's sites present in the folder, in manifest order.
        manifest_sha256: Hash of the manifest used (recorded with the results).
    """

    name: str
    root: Path
    layout: str = ""
    rows: list[SiteRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    subset: list[str] = field(default_factory=list)
    sites_found: list[str] = field(default_factory=list)
    manifest_sha256: str = ""

    @property
    def ok(self) -> bool:
        """True when nothing is broken (a subset is ok; see :attr:`is_subset`)."""
        return not self.problems

    @property
    def is_subset(self) -> bool:
        """True when the copy holds fewer sites or files than the manifest lists."""
        return bool(self.subset)

    @property
    def complete(self) -> bool:
        """True when nothing is broken and nothing is missing."""
        return self.ok and not self.subset

    def table(self) -> str:
        """The per-site table as text ("absent" for a site that is not there)."""
        w = max([len("site"), *(len(r.site) for r in self.rows)]) + 2
        head = f"{'site':<{w}}{'split':<8}{'expected':>9}{'found':>8}{'checked':>9}{'problems':>9}"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            exp = "-" if r.expected is None else str(r.expected)
            found = "absent" if r.found is None else str(r.found)
            lines.append(f"{r.site:<{w}}{r.split:<8}{exp:>9}{found:>8}{r.checked:>9}{r.problems:>9}")
        return "\n".join(lines)

    def status(self) -> str:
        """"OK", "OK, SUBSET of the dataset" or "N problem(s)"."""
        if self.problems:
            return f"{len(self.problems)} problem(s)"
        return "OK, SUBSET of the dataset" if self.subset else "OK"

    def __str__(self) -> str:
        layout = f" (layout {self.layout})" if self.layout else ""
        out = [f"{self.name} at {self.root}{layout}: {self.status()}", self.table()]
        if self.subset:
            out.append("Subset (usable; results are not comparable with the full dataset's):")
            out += [f"  - {note}" for note in self.subset]
        if self.problems:
            out.append("Problems (fix these, then run the check again):")
            out += [f"  - {p}" for p in self.problems[:50]]
            if len(self.problems) > 50:
                out.append(f"  ... and {len(self.problems) - 50} more")
        return "\n".join(out)

    def raise_if_failed(self, allow_subset: bool = True) -> None:
        """Raise :class:`DataError` with the report when something is broken (or missing, unless allowed)."""
        if self.problems or (self.subset and not allow_subset):
            raise DataError(str(self))
