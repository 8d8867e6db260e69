"""ParamSplit and weighted_average against their definitions."""

import pytest
import torch

from fedlab.federation.params import NORM_TYPES, ParamSplit, state_bytes, weighted_average
from fedlab.models.unet import UNet


def _states(n: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [{"w": torch.randn(3, 4, generator=g), "b": torch.randn(4, generator=g)} for _ in range(n)]


def test_weighted_average_of_identical_states_is_that_state():
    s = _states(1)[0]
    out = weighted_average([s, s, s], [3, 1, 7])
    for k in s:
        torch.testing.assert_close(out[k], s[k], rtol=1e-6, atol=1e-7)


def test_weighted_average_respects_weights():
    a, b = _states(2)
    out = weighted_average([a, b], [1, 3])
    for k in a:
        torch.testing.assert_close(out[k], 0.25 * a[k] + 0.75 * b[k])
    uniform = weighted_average([a, b])
    torch.testing.assert_close(uniform["w"], (a["w"] + b["w"]) / 2)


def test_weighted_average_single_state_is_bitwise_identity():
    (a,) = _states(1)
    out = weighted_average([a], [17])
    assert all(torch.equal(out[k], a[k]) for k in a)


@pytest.mark.parametrize("weights, match", [([1], "2 states but 1 weights"), ([-1, 2], "non-negative"),
                                            ([0, 0], "positive sum")])
def test_weighted_average_rejects_bad_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        weighted_average(_states(2), weights)


def test_weighted_average_rejects_mismatched_keys():
    a, b = _states(2)
    del b["b"]
    with pytest.raises(ValueError, match="different keys"):
        weighted_average([a, b])


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_split_covers_every_key_once_buffers_included(norm):
    model = UNet(1, 2, base_width=4, levels=3, norm=norm)
    keys = list(model.state_dict())
    for split in (ParamSplit.all_shared(model), ParamSplit.from_model(model, local_types=NORM_TYPES),
                  ParamSplit.from_model(model, local_modules=[model.head])):
        assert sorted(split.keys) == sorted(keys)
        assert len(set(split.keys)) == len(keys)


def test_fedbn_split_keeps_norm_layers_and_counters_local():
    model = UNet(1, 1, base_width=4, levels=2, norm="batch")
    split = ParamSplit.from_model(model, local_types=NORM_TYPES)
    norm_keys = {f"{p}.{n}" for p, m in model.named_modules() if isinstance(m, NORM_TYPES)
                 for n, _ in list(m.named_parameters(recurse=False)) + list(m.named_buffers(recurse=False))}
    assert norm_keys and norm_keys == set(split.local)
    assert any(k.endswith("running_mean") for k in split.local)
    # integer buffers are local even when the module is shared
    fedavg = ParamSplit.all_shared(model)
    assert set(fedavg.local) == {k for k, v in model.state_dict().items() if not v.is_floating_point()}


def test_head_split_by_module_identity():
    model = UNet(1, 1, base_width=4, levels=2)
    split = ParamSplit.from_model(model, local_modules=[model.head])
    assert set(split.local) == {"head.weight", "head.bias"}


def test_state_bytes_counts_elements_times_size():
    s = {"a": torch.zeros(10, dtype=torch.float32), "b": torch.zeros(3, dtype=torch.float64)}
    assert state_bytes(s) == 10 * 4 + 3 * 8


def test_split_rejects_overlap():
    with pytest.raises(ValueError, match="both shared and local"):
        ParamSplit(("a",), ("a",))
