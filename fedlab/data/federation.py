"""Site and Federation: the containers every lesson is built on.

A :class:`Site` is one hospital: a name, its own train / validation / test data and metadata
(scanner, field strength, source). A :class:`Federation` is the ordered list of sites plus what the
task is. Data never moves between sites; strategies decide what a site sends.

Data are tensors so that a site's data can live on the training device for the whole run:

* segmentation: ``x`` is ``(N, C, H, W)`` float, ``y`` is ``(N, L, H, W)`` float in {0, 1}
  (one channel per label, sigmoid outputs);
* classification: ``x`` is ``(N, F)`` float, ``y`` is ``(N,)`` float in {0, 1}.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import pandas as pd
import torch

TASKS = ("segmentation", "classification")


@dataclass(frozen=True)
class Split:
    """Inputs and targets of one split (train, val or test) of one site.

    ``groups`` is optional: the integer case id (N,) of every sample, for 2-D slices cut from 3-D volumes.
    The slices of a case, in stored order, form its volume when scoring per volume
    (``evaluate(..., per="volume")``, :func:`fedlab.metrics.volume_scores`).
    """

    x: torch.Tensor
    y: torch.Tensor
    groups: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} samples but y has {self.y.shape[0]}")
        g = self.groups
        if g is not None and not (isinstance(g, torch.Tensor) and g.ndim == 1 and g.shape[0] == self.x.shape[0]
                                  and not (g.is_floating_point() or g.is_complex() or g.dtype == torch.bool)):
            got = f"shape {tuple(g.shape)}, {g.dtype}" if isinstance(g, torch.Tensor) else type(g).__name__
            raise ValueError(f"groups must be an integer tensor of case ids of shape ({self.x.shape[0]},), one per "
                             f"sample, got {got}; map case names to integers first.")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def to(self, device: torch.device | str) -> Split:
        """Copy to a device (no-op when already there)."""
        groups = None if self.groups is None else self.groups.to(device)
        return Split(self.x.to(device), self.y.to(device), groups)

    def subset(self, index: torch.Tensor | Sequence[int]) -> Split:
        """Rows ``index`` of this split."""
        index = torch.as_tensor(index, dtype=torch.long, device=self.x.device)
        groups = None if self.groups is None else self.groups[index.to(self.groups.device)]
        return Split(self.x[index], self.y[index], groups)

    @staticmethod
    def concat(splits: Sequence[Split]) -> Split:
        """Stack several splits (used only by the centralised "Mix" baseline).

        Case ids are kept when every non-empty split has them, shifted so that cases of different splits
        never merge; otherwise the result has none.
        """
        groups = None
        parts = [s for s in splits if len(s)]
        if parts and all(s.groups is not None for s in parts):
            shifted, offset = [], 0
            for s in parts:
                shifted.append(s.groups - s.groups.min() + offset)
                offset = int(shifted[-1].max()) + 1
            groups = torch.cat(shifted)
        return Split(torch.cat([s.x for s in splits]), torch.cat([s.y for s in splits]), groups)


@dataclass(frozen=True)
class Site:
    """One hospital's data.

    Attributes:
        name: Short site name (used as a column / legend label).
        train: Training split (must not be empty).
        test: Test split.
        val: Validation split used for model selection (may be empty, never the test split).
        metadata: Free-form facts about the site (scanner, field strength, source, synthetic effects).
    """

    name: str
    train: Split
    test: Split
    val: Split | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.train) == 0:
            raise ValueError(f"Site {self.name!r} has no training data; every site needs at least one sample.")

    @property
    def num_train(self) -> int:
        """Number of training samples (the FedAvg weight n_k)."""
        return len(self.train)

    def to(self, device: torch.device | str) -> Site:
        """Copy every split to ``device``."""
        val = self.val.to(device) if self.val is not None else None
        return replace(self, train=self.train.to(device), test=self.test.to(device), val=val)


@dataclass(frozen=True)
class FederationSpec:
    """What a model needs to know about a federation, without its data (what a Flower node or server has).

    Attributes:
        name: Dataset name.
        task: "segmentation" or "classification".
        labels: Label channel names (segmentation) or the positive class.
        site_names: Sites in order (site k has site code k).
        num_channels: Input channels (segmentation) or features (classification).
        image_size: Side of the square images in pixels (0 for classification).
    """

    name: str
    task: str
    labels: tuple[str, ...]
    site_names: tuple[str, ...]
    num_channels: int
    image_size: int = 0

    def __len__(self) -> int:
        return len(self.site_names)

    @property
    def num_labels(self) -> int:
        """Output channels of the segmentation model (1 for classification)."""
        return len(self.labels) if self.task == "segmentation" else 1

    def to_dict(self) -> dict:
        """Plain values (e.g. for a Flower run config)."""
        return {"name": self.name, "task": self.task, "labels": list(self.labels), "site_names": list(self.site_names),
                "num_channels": self.num_channels, "image_size": self.image_size}

    @classmethod
    def from_dict(cls, data: dict) -> FederationSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(data["name"], data["task"], tuple(data["labels"]), tuple(data["site_names"]),
                   int(data["num_channels"]), int(data.get("image_size", 0)))


@dataclass(frozen=True)
class Federation:
    """An ordered list of sites that share one task.

    Attributes:
        name: Dataset name, e.g. "prostate".
        sites: The sites, in a fixed order (site k has site code k).
        task: "segmentation" or "classification".
        labels: Names of the label channels (segmentation) or of the positive class.
        synthetic: True for the embedded synthetic stand-ins; shown in every table and plot title.
        source: Where the data came from (generator + seed, or a folder and its manifest).
        provenance: What a real-data loader found and decided: dataset, manifest, manifest_sha256, layout,
            data_dir, ``found`` (which layout the folder matched and why), ``subset`` (what is missing),
            ``site_letters`` (the paper's letter of each site), ``reference`` (the published table the
            dataset is compared with). Empty for synthetic data.
    """

    name: str
    sites: tuple[Site, ...]
    task: str = "segmentation"
    labels: tuple[str, ...] = ("foreground",)
    synthetic: bool = True
    source: str = ""
    provenance: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sites", tuple(self.sites))
        if self.task not in TASKS:
            raise ValueError(f"Federation.task must be one of {TASKS}, got {self.task!r}")
        if not self.sites:
            raise ValueError(f"Federation {self.name!r} has no sites")
        names = [s.name for s in self.sites]
        if len(set(names)) != len(names):
            raise ValueError(f"Site names must be unique, got {names}")
        for site in self.sites:
            for split_name in ("train", "val", "test"):
                split = getattr(site, split_name)
                if split is not None and len(split):
                    self._check_split(site.name, split_name, split)

    def _check_split(self, site: str, split_name: str, split: Split) -> None:
        where = f"site {site!r}, {split_name} split"
        if self.task == "segmentation":
            x, y = split.x, split.y
            if x.ndim != 4 or y.ndim != 4:
                raise ValueError(f"{where}: expected images (N, C, H, W) and masks (N, L, H, W), "
                                 f"got {tuple(x.shape)} and {tuple(y.shape)}")
            if x.shape[2:] != y.shape[2:]:
                raise ValueError(f"{where}: image/mask shape mismatch: images are {tuple(x.shape[2:])} "
                                 f"but masks are {tuple(y.shape[2:])}; resize both to the same size.")
            if y.shape[1] != len(self.labels):
                raise ValueError(f"{where}: masks have {y.shape[1]} channels but labels are {self.labels}")
            if not bool(((y == 0) | (y == 1)).all()):
                bad = torch.unique(y[(y != 0) & (y != 1)])[:5].tolist()
                raise ValueError(f"{where}: masks must be binary (0/1), found values such as {bad}; "
                                 "threshold them (e.g. mask > 0.5) or set the loader's mask threshold.")
        else:
            if split.x.ndim != 2 or split.y.ndim != 1:
                raise ValueError(f"{where}: expected features (N, F) and labels (N,), "
                                 f"got {tuple(split.x.shape)} and {tuple(split.y.shape)}")

    def __len__(self) -> int:
        return len(self.sites)

    def __iter__(self) -> Iterator[Site]:
        return iter(self.sites)

    def __getitem__(self, key: int | str) -> Site:
        if isinstance(key, str):
            for site in self.sites:
                if site.name == key:
                    return site
            raise KeyError(f"No site named {key!r}; sites are {self.site_names}")
        return self.sites[key]

    @property
    def site_names(self) -> list[str]:
        """Site names in order."""
        return [s.name for s in self.sites]

    @property
    def num_channels(self) -> int:
        """Input channels (segmentation) or features (classification)."""
        return int(self.sites[0].train.x.shape[1])

    @property
    def num_labels(self) -> int:
        """Output channels of the segmentation model (1 for classification)."""
        return len(self.labels) if self.task == "segmentation" else 1

    @property
    def image_size(self) -> int:
        """Side of the (square) images in pixels; 0 for classification."""
        return int(self.sites[0].train.x.shape[-1]) if self.task == "segmentation" else 0

    def spec(self) -> FederationSpec:
        """What a model needs to know about this federation, without the data."""
        return FederationSpec(self.name, self.task, tuple(self.labels), tuple(self.site_names), self.num_channels,
                              self.image_size)

    @property
    def title(self) -> str:
        """Human label with the provenance, e.g. "prostate (synthetic)"."""
        return f"{self.name} ({'synthetic' if self.synthetic else 'real'})"

    def sizes(self) -> pd.DataFrame:
        """Samples per site and split: rows = sites in order, columns ``train``, ``val``, ``test``."""
        rows = {s.name: {"train": len(s.train), "val": len(s.val) if s.val is not None else 0, "test": len(s.test)}
                for s in self.sites}
        return pd.DataFrame.from_dict(rows, orient="index", columns=["train", "val", "test"]).rename_axis("site")

    def describe(self) -> str:
        """A few lines for a notebook: title, sites, source and, for real data, what the loader found."""
        lines = [f"{self.title}: {len(self)} sites ({', '.join(self.site_names)}), labels {list(self.labels)}",
                 f"source: {self.source}"]
        for key in ("found", "subset"):
            if self.provenance.get(key):
                lines.append(f"{key}: {self.provenance[key]}")
        return "\n".join(lines)

    def to(self, device: torch.device | str) -> Federation:
        """Copy every site's data to ``device`` (do this once per run)."""
        return replace(self, sites=tuple(s.to(device) for s in self.sites))

    def pooled(self, name: str = "Mix") -> Site:
        """All sites' training (and validation) data in one site: the centralised upper bound."""
        vals = [s.val for s in self.sites if s.val is not None and len(s.val)]
        return Site(
            name=name,
            train=Split.concat([s.train for s in self.sites]),
            test=Split.concat([s.test for s in self.sites]),
            val=Split.concat(vals) if vals else None,
            metadata={"pooled_from": self.site_names},
        )
