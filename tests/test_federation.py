"""Federation helpers every lesson uses: the per-site sizes table and the description of the data."""

from __future__ import annotations

import torch

from fedlab.data.federation import Federation, Site, Split


def _split(n: int) -> Split:
    x = torch.zeros(n, 1, 4, 4)
    return Split(x, x)


def test_sizes_counts_every_split_in_site_order() -> None:
    fed = Federation("toy", [Site("B", _split(3), _split(2), _split(1)), Site("A", _split(5), _split(0))],
                     synthetic=False, source="tests", provenance={"found": "a test", "subset": ""})
    sizes = fed.sizes()
    assert list(sizes.index) == ["B", "A"] and list(sizes.columns) == ["train", "val", "test"]
    assert sizes.loc["B"].tolist() == [3, 1, 2] and sizes.loc["A"].tolist() == [5, 0, 0]
    text = fed.describe()
    assert text.startswith("toy (real): 2 sites (B, A)") and "found: a test" in text and "subset" not in text
