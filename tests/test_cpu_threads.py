"""cpu_threads: torch's CPU thread count inside a block, restored afterwards (also after an error)."""

from __future__ import annotations

import pytest
import torch

from fedlab.reproducibility import cpu_threads


def test_sets_and_restores_threads():
    before = torch.get_num_threads()
    other = 2 if before == 1 else 1
    with cpu_threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), cpu_threads(other):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with cpu_threads(None):  # None leaves the setting alone
        assert torch.get_num_threads() == before
