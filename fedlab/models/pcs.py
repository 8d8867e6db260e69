"""LC-Fed's personalized channel selection (PCS) and its contrastive site embedding loss.

PCS (Wang, Jin, Wang, ECCV 2022) re-weights the channels of a feature map with a gate that depends
on the image *and* on which site the image comes from:

1. the site code (one-hot over the K sites) goes through a shared MLP ``K -> C -> C``: the site
   embedding ``e``;
2. the global-average-pooled and the global-max-pooled feature are each concatenated with ``e``
   and scored by a second shared MLP ``2C -> C/16 -> C``;
3. the two scores are summed and squashed: gate ``M = sigmoid(s_avg + s_max)`` of shape (N, C, 1, 1);
4. output ``x * M + x`` (a residual re-weighting: a gate of 0 keeps the feature, 1 doubles it).

Every weight is shared by all sites (averaged by the server); the *site code* is the only thing
that personalises the gate. The contrastive site embedding loss keeps the sites' gates apart:
``L_con = -(1/(K-1)) * sum_{j != k} MSE(M_k, M_j)``, where the ``M_j`` are the gates the same
batch gets with the other sites' codes, detached.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def site_code(site: int | torch.Tensor, num_sites: int, batch: int, device: torch.device | str | None = None
              ) -> torch.Tensor:
    """One-hot site codes.

    Args:
        site: One site index for the whole batch, or a (batch,) tensor of indices.
        num_sites: K, the number of sites.
        batch: N, the batch size.
        device: Where to create the codes.

    Returns:
        (N, K) float tensor.

    Raises:
        ValueError: when a site index is outside ``[0, num_sites)``.
    """
    if isinstance(site, int):  # the training path: checked on the host, no device sync
        if not 0 <= site < num_sites:
            raise ValueError(f"site index {site} is outside [0, {num_sites}); site codes index the federation's sites")
        code = torch.zeros(batch, num_sites, device=device)
        code[:, site] = 1.0
        return code  # (N, K)
    index = torch.as_tensor(site, dtype=torch.long, device=device)
    if index.ndim == 0:
        index = index.expand(batch)
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= num_sites):
        raise ValueError(f"site index {site!r} is outside [0, {num_sites}); site codes index the federation's sites")
    return F.one_hot(index, num_sites).float()  # (N, K)


class PersonalizedChannelSelection(nn.Module):
    """Site-conditioned channel gate ``x -> x * M + x`` (LC-Fed's PCS).

    Args:
        channels: C, channels of the feature it gates (the U-Net bottleneck).
        num_sites: K, length of the one-hot site code.
        reduction: Hidden width of the scoring MLP is ``max(min_hidden, C // reduction)``.
        min_hidden: Lower bound of that width. The default, 16, is the paper's hidden width (its
            256-channel bottleneck divided by 16), kept at every network size: the classroom
            networks' 32 bottleneck channels divided by 16 would leave 2 units, and with so few units
            they die during training (ReLU never fires) and every site's gate freezes at 0.5, which
            switches PCS off (measured with 4 units: 0 of 4 respond to the site code after a
            classroom LC-Fed run; with 16, 6 of 16 do).
    """

    def __init__(self, channels: int, num_sites: int, reduction: int = 16, min_hidden: int = 16) -> None:
        super().__init__()
        if channels < 1 or num_sites < 1:
            raise ValueError(f"channels and num_sites must be positive, got {channels} and {num_sites}")
        hidden = max(min_hidden, channels // reduction)
        self.channels = channels
        self.num_sites = num_sites
        self.embed = nn.Sequential(nn.Linear(num_sites, channels, bias=False), nn.ReLU(),
                                   nn.Linear(channels, channels, bias=False))
        self.score = nn.Sequential(nn.Linear(2 * channels, hidden, bias=False), nn.ReLU(),
                                   nn.Linear(hidden, channels, bias=False))

    def gate(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """The gate M (N, C, 1, 1) for feature ``x`` (N, C, h, w) and site codes ``code`` (N, K)."""
        if x.shape[1] != self.channels:
            raise ValueError(f"PCS expects {self.channels} channels, got x of shape {tuple(x.shape)}")
        if code.shape != (x.shape[0], self.num_sites):
            raise ValueError(f"site code must have shape ({x.shape[0]}, {self.num_sites}), got {tuple(code.shape)}; "
                             "build it with fedlab.models.pcs.site_code")
        e = self.embed(code)  # (N, C)
        s_avg = self.score(torch.cat([x.mean(dim=(2, 3)), e], dim=1))  # (N, C)
        s_max = self.score(torch.cat([x.amax(dim=(2, 3)), e], dim=1))  # (N, C)
        return torch.sigmoid(s_avg + s_max)[:, :, None, None]  # (N, C, 1, 1)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gate ``x``: returns ``(x * M + x, M)``."""
        m = self.gate(x, code)
        return x * m + x, m


def contrastive_site_loss(gate: torch.Tensor, other_gates: Sequence[torch.Tensor]) -> torch.Tensor:
    """``-(1/(K-1)) * sum_j MSE(M_k, M_j)`` over the other sites' gates (detached here).

    Args:
        gate: This site's gate M_k (N, C, 1, 1), with gradient.
        other_gates: The K-1 gates of the same batch under the other sites' codes.

    Raises:
        ValueError: with no other gate (a federation of one site has nothing to contrast with).
    """
    if not other_gates:
        raise ValueError("contrastive_site_loss needs the gates of at least one other site (K >= 2)")
    total = sum(F.mse_loss(gate, other.detach()) for other in other_gates)
    return -total / len(other_gates)


def gate_spread(gates: torch.Tensor) -> torch.Tensor:
    """Mean squared distance between the gates of every pair of sites.

    Args:
        gates: (K, ...) one gate (or mean gate) per site code, K >= 2.

    Returns:
        0-d tensor: ``mean over pairs i < j of MSE(gates[i], gates[j])``.
    """
    k = gates.shape[0]
    if k < 2:
        raise ValueError(f"gate_spread needs the gates of at least 2 sites, got {k}")
    flat = gates.reshape(k, -1)
    pairs = [F.mse_loss(flat[i], flat[j]) for i in range(k) for j in range(i + 1, k)]
    return torch.stack(pairs).mean()
