"""Label skew by Dirichlet partition: the sites see the same kind of patients in different class proportions.

The standard way to simulate label skew (P(y) differs between sites; Hsu, Qi and Brown 2019, used by
NIID-Bench and most FL benchmarks): for every class ``c``, draw site shares ``p_c ~ Dirichlet(alpha, ..., alpha)``
and deal that class's samples out in those shares. Large ``alpha`` (e.g. 100) gives every site nearly the
pooled class balance; ``alpha = 1`` gives visibly skewed sites; ``alpha <= 0.3`` gives sites dominated by one
class. :func:`dirichlet_partition` returns the index sets, :func:`dirichlet_federation` a classification
federation whose sites are those sets and which all share one pooled test set, so that every model is
scored on the same, unskewed data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from fedlab.data.federation import Federation, Site, Split


def dirichlet_partition(labels: np.ndarray | torch.Tensor, num_sites: int, alpha: float, seed: int = 0,
                        min_size: int = 2, max_tries: int = 1000) -> list[np.ndarray]:
    """Deal samples out to ``num_sites`` sites with Dirichlet(``alpha``) class proportions.

    Args:
        labels: (N,) class label of every sample.
        num_sites: Number of sites K.
        alpha: Concentration (> 0); small = strong skew.
        seed: Seed of the draw (numpy ``default_rng``).
        min_size: Redraw until every site has at least this many samples (as NIID-Bench does).
        max_tries: Give up after this many draws.

    Returns:
        K sorted int64 index arrays that together hold every sample exactly once.

    Raises:
        ValueError: for bad arguments, or when no draw gives every site ``min_size`` samples.
    """
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels).reshape(-1)
    if num_sites < 1:
        raise ValueError(f"num_sites must be >= 1, got {num_sites}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}")
    if num_sites * min_size > len(labels):
        raise ValueError(f"{len(labels)} samples cannot give {num_sites} sites {min_size} samples each")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    for _ in range(max_tries):
        parts: list[list[np.ndarray]] = [[] for _ in range(num_sites)]
        for c in classes:
            members = rng.permutation(np.flatnonzero(labels == c))
            shares = rng.dirichlet(np.full(num_sites, float(alpha)))
            cuts = (np.cumsum(shares)[:-1] * len(members)).round().astype(int)
            for k, chunk in enumerate(np.split(members, cuts)):
                parts[k].append(chunk)
        out = [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]
        if min(len(p) for p in out) >= min_size:
            return out
    raise ValueError(f"no Dirichlet(alpha={alpha}) draw in {max_tries} tries gave every one of {num_sites} sites "
                     f"{min_size} samples; raise alpha or lower min_size")


def label_counts(federation: Federation, split: str = "train") -> pd.DataFrame:
    """Samples of each class at each site: rows = sites, columns = class labels (classification only)."""
    rows = {}
    for site in federation:
        y = getattr(site, split).y.detach().cpu().numpy()
        rows[site.name] = pd.Series(y).value_counts()
    table = pd.DataFrame(rows).T.fillna(0).astype(int)
    return table.reindex(sorted(table.columns), axis=1).rename_axis(index="site", columns="class")


def skew_summary(federation: Federation, positive: float = 1.0) -> dict[str, float]:
    """How skewed a classification federation's training data are, in four numbers.

    Returns:
        ``largest site share`` (of all training samples), ``largest site positive share`` (its share of the
        ``positive`` class), and the lowest and highest positive share over the sites (``positive share min`` /
        ``max``). A Dirichlet partition skews site sizes as well as class balance: with a small alpha one site
        often holds most samples.
    """
    counts = label_counts(federation)
    sizes = counts.sum(axis=1)
    share = counts.get(positive, pd.Series(0, index=counts.index)) / sizes
    largest = sizes.idxmax()
    return {"largest site share": float(sizes.max() / sizes.sum()),
            "largest site positive share": float(share[largest]),
            "positive share min": float(share.min()), "positive share max": float(share.max())}


def dirichlet_federation(train: Split, test: Split, num_sites: int, alpha: float, seed: int = 0,
                         min_size: int = 2, name: str = "dirichlet", synthetic: bool = True,
                         source: str = "") -> Federation:
    """A classification federation whose sites split ``train`` with Dirichlet(``alpha``) label skew.

    Args:
        train: The pooled training data (features (N, F), labels (N,)).
        test: One test set, given to every site (scores are comparable across sites and settings).
        num_sites: Number of sites.
        alpha: Dirichlet concentration.
        seed: Seed of the partition.
        min_size: Fewest training samples per site.
        name: Federation name.
        synthetic: Whether the data are synthetic (labels every table).
        source: Where the pooled data came from.

    Returns:
        The federation (sites "site 1" .. "site K", no validation splits); ``site.metadata`` holds
        ``alpha`` and the site's class counts.
    """
    parts = dirichlet_partition(train.y, num_sites, alpha, seed, min_size)
    sites = []
    for k, index in enumerate(parts):
        part = train.subset(torch.from_numpy(index))
        counts = {str(int(c)): int(n) for c, n in zip(*np.unique(part.y.cpu().numpy(), return_counts=True),
                                                      strict=True)}
        sites.append(Site(f"site {k + 1}", train=part, test=test, metadata={"alpha": alpha, "class_counts": counts,
                                                                            "synthetic": synthetic}))
    return Federation(name, tuple(sites), task="classification", labels=("positive",), synthetic=synthetic,
                      source=f"{source} Dirichlet(alpha={alpha:g}) over {num_sites} sites, seed={seed}".strip())


__all__ = ["dirichlet_federation", "dirichlet_partition", "label_counts", "skew_summary"]
