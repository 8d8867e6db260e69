"""Run settings: one frozen dataclass, three presets.

* ``smoke``: a notebook finishes in under 2 minutes on 2 CPU cores (tests, CI).
* ``classroom`` (default): meaningful curves in under 10 minutes on a laptop CPU.
* ``paper``: the LC-Fed protocol (Wang et al., ECCV 2022) on a GPU: 384x384 inputs, U-Net with
  base width 16 and 5 levels, InstanceNorm, Adam 1e-3, batch 6, 50 iterations per round, 300 rounds.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

PRESET_ENV = "FEDLAB_PRESET"
DATA_DIR_ENV = "FEDLAB_DATA_DIR"


@dataclass(frozen=True)
class Config:
    """Settings of one run (data size, model size, optimisation, federation schedule).

    Attributes:
        preset: Name of the preset this config came from.
        image_size: Side of the square 2D images, in pixels.
        cases_scale: Multiplier on each synthetic site's number of images.
        base_width: Channels of the U-Net's first level (doubles each level).
        levels: Number of U-Net resolution levels.
        norm: Normalisation layer of the U-Net: "instance" or "batch".
        rounds: Communication rounds.
        local_steps: Local optimisation steps (mini-batches) per client per round.
        batch_size: Mini-batch size.
        lr: Learning rate (Adam).
        eval_every: Evaluate every this many rounds (the last round is always evaluated).
        checkpoint_every: Checkpoint every this many rounds (0 = never).
        finetune_steps: Local fine-tuning steps after federation (FT baseline).
        head_steps: Head-only steps per round in FedRep-style schedules (taken from local_steps).
        optimizer: Client optimiser, "adam" (paper) or "sgd".
        weight_decay: L2 penalty passed to the optimiser.
        eval_batch_size: Images per forward pass during evaluation.
        hc_rounds: LC-Fed's head-calibration rounds (stage 1), taken from the end of ``rounds``.
        optimizer_state: "fresh" (default): a client whose weights the server overwrites starts every
            round with a new optimiser, as in FedAvg's definition (McMahan et al. 2017) and Flower's
            client apps; "persistent": each client keeps its optimiser state (Adam moments, step
            count) across rounds, as code that builds one optimiser per client before the round loop
            does. Local training and Mix, whose weights nothing overwrites, always keep theirs.
    """

    preset: str = "classroom"
    image_size: int = 48
    cases_scale: float = 1.0
    base_width: int = 8
    levels: int = 4
    norm: str = "instance"
    rounds: int = 20
    local_steps: int = 10
    batch_size: int = 8
    lr: float = 1e-3
    eval_every: int = 2
    checkpoint_every: int = 0
    finetune_steps: int = 40
    head_steps: int = 2
    optimizer: str = "adam"
    weight_decay: float = 0.0
    eval_batch_size: int = 32
    hc_rounds: int = 5
    optimizer_state: str = "fresh"

    def __post_init__(self) -> None:
        positive = ("image_size", "base_width", "levels", "rounds", "local_steps", "batch_size", "eval_every")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"Config.{name} must be positive, got {getattr(self, name)!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"Config.optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if self.optimizer_state not in ("fresh", "persistent"):
            raise ValueError(f"Config.optimizer_state must be 'fresh' or 'persistent', got {self.optimizer_state!r}")
        if self.norm not in ("instance", "batch"):
            raise ValueError(f"Config.norm must be 'instance' or 'batch', got {self.norm!r}")
        if self.image_size % (2 ** (self.levels - 1)):
            raise ValueError(
                f"Config.image_size={self.image_size} must be divisible by 2**(levels-1)={2 ** (self.levels - 1)}"
            )
        if self.hc_rounds < 0:
            raise ValueError(f"Config.hc_rounds must be >= 0, got {self.hc_rounds!r}")
        if not 0 <= self.head_steps < self.local_steps:
            raise ValueError("Config.head_steps must be in [0, local_steps)")

    def replace(self, **changes: object) -> Config:
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain-dict view for summary.json."""
        return dataclasses.asdict(self)


PRESETS: dict[str, Config] = {
    "smoke": Config(
        preset="smoke", image_size=32, cases_scale=0.25, base_width=8, levels=3, rounds=3, local_steps=4,
        batch_size=4, eval_every=1, finetune_steps=4, head_steps=1, hc_rounds=1,
    ),
    "classroom": Config(
        preset="classroom", image_size=32, cases_scale=1.0, base_width=8, levels=3, rounds=30, local_steps=20,
        batch_size=6, eval_every=2, finetune_steps=100, head_steps=4, hc_rounds=5, eval_batch_size=64,
    ),
    "paper": Config(
        preset="paper", image_size=384, cases_scale=1.0, base_width=16, levels=5, norm="instance", rounds=300,
        local_steps=50, batch_size=6, lr=1e-3, eval_every=5, checkpoint_every=10, finetune_steps=500,
        head_steps=10, hc_rounds=50,
    ),
}


def get_config(preset: str | None = None, **overrides: object) -> Config:
    """Return the named preset, optionally with some fields overridden.

    Args:
        preset: "smoke", "classroom" or "paper". ``None`` or "" reads ``$FEDLAB_PRESET``, then
            falls back to "classroom".
        **overrides: Config fields to change, e.g. ``rounds=5``.

    Raises:
        ValueError: for an unknown preset name (the message lists the valid ones).
    """
    name = preset or os.environ.get(PRESET_ENV) or "classroom"
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; choose one of {sorted(PRESETS)} (or set ${PRESET_ENV}).")
    return PRESETS[name].replace(**overrides) if overrides else PRESETS[name]
