"""Run settings: frozen dataclasses, one preset table, one resolver.

Two families of lessons share the engine and therefore the engine fields of :class:`Config`:

* ``"segmentation"`` (notebooks 01-03): :class:`Config`, U-Net and image fields included;
* ``"tabular"`` (notebook 04, logistic regression): :class:`TabularConfig`, a :class:`Config` with the
  tabular lesson's own fields (FedProx's mu, FedSGD's rounds, number of splits, ...) and tabular
  defaults for the engine fields.

Presets, for both families (:data:`PRESETS`, keyed family then preset):

* ``smoke``: a notebook finishes in under 2 minutes on 2 CPU cores (tests, CI).
* ``classroom`` (default): a laptop CPU lesson: each notebook alone in 0.5 to 15 minutes on 2 cores, all nine
  in about 25 minutes under ``make reproduce`` (``bench/results/notebooks_classroom*.json``). On the embedded
  prostate federation 7 of 9 methods' validation curves flatten (``bench/results/seg_prostate_classroom``), on
  fundus 6 of 9, on polyp none yet (``seg_fundus_classroom``, ``seg_polyp_classroom``).
* ``paper``: the paper's protocol on a GPU (segmentation: the LC-Fed protocol of Wang et al., ECCV
  2022: 384x384 inputs, U-Net with base width 16 and 5 levels, InstanceNorm, Adam 1e-3, batch 6,
  50 iterations per round, 300 rounds).

:func:`get_config` is the only place that reads ``$FEDLAB_PRESET``; when the variable is set it wins
over the preset a caller passes, so that runners which cannot inject notebook parameters (nbval,
``jupyter nbconvert``) still choose the preset. Code that needs a specific preset regardless of the
environment reads :data:`PRESETS` directly.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass

PRESET_ENV = "FEDLAB_PRESET"
DATA_DIR_ENV = "FEDLAB_DATA_DIR"


HEAD_INITS: tuple[str, ...] = ("kaiming_fan_out", "kaiming_fan_out_centred", "pytorch_default")


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
        head_init: Initial weights of the U-Net's 1x1 segmentation head: "kaiming_fan_out" (the LC-Fed
            authors' U-Net: Kaiming normal with fan_out, weight SD about sqrt(2 / labels)),
            "kaiming_fan_out_centred" (default: the same weights, biases that cancel the image-wide logit offset
            they give the non-negative decoder feature; see :class:`fedlab.models.unet.UNet`) or "pytorch_default"
            (``nn.Conv2d``'s own: uniform, SD about 1 / sqrt(3 * feature channels)).
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
    head_init: str = "kaiming_fan_out_centred"

    def __post_init__(self) -> None:
        positive = ("image_size", "base_width", "levels", "rounds", "local_steps", "batch_size", "eval_every")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"Config.{name} must be positive, got {getattr(self, name)!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"Config.optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if self.optimizer_state not in ("fresh", "persistent"):
            raise ValueError(f"Config.optimizer_state must be 'fresh' or 'persistent', got {self.optimizer_state!r}")
        if self.head_init not in HEAD_INITS:
            raise ValueError(f"Config.head_init must be one of {HEAD_INITS}, got {self.head_init!r}")
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
        """Return a copy with some fields changed (validated again).

        Raises:
            ValueError: for a field the config does not have (the message lists them) or an invalid value.
        """
        names = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(names))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no field(s) {unknown}; fields: {', '.join(names)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain-dict view for summary.json."""
        return dataclasses.asdict(self)


SEGMENTATION_PRESETS: dict[str, Config] = {
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


@dataclass(frozen=True)
class TabularConfig(Config):
    """Settings of the tabular logistic-regression lesson (Guan and Liu's Table 2; notebook 04).

    The engine fields keep their meaning with tabular defaults: plain SGD (``optimizer="sgd"``), as in
    the textbook analyses of FedAvg, FedProx and FedSGD; a client whose weights the server overwrites
    gets a fresh optimiser every round (``optimizer_state="fresh"``), which for plain SGD without
    momentum changes nothing, so FedAvg is exactly McMahan et al.'s algorithm. The L2 penalty
    ``weight_decay`` is the same for every setting: each one minimises (or approaches) ``mean BCE +
    weight_decay / 2 * ||(w, b)||^2``. The image and U-Net fields are unused.

    Attributes:
        rounds: Communication rounds of FedAvg, FedProx and (by default) FedSGD.
        local_steps: FedAvg's local iterations per round (the survey: 10).
        batch_size: Mini-batch size of FedAvg's and FedProx's local iterations.
        lr: Client learning rate (and FedSGD's server step); 0.1 is about 1/L for the 90 standardised ADNI
            features (L: smoothness constant of the objective, :func:`fedlab.models.logistic.smoothness_constant`).
        weight_decay: L2 penalty of every setting (bias included). 1e-2 is at the low end of what 5-fold
            cross-validation of the log-loss picks on the synthetic cohort's training data (1e-2 to 3e-2).
        mu: FedProx's proximal weight (the survey: 0.1).
        fedprox_steps: FedProx's local steps per round; ``None`` = one local pass (epoch), as the survey.
        fedsgd_rounds: FedSGD's rounds; ``None`` = ``rounds`` (the same number of messages as FedAvg).
        splits: Random train/test splits per client (the survey: 5).
        test_fraction: Test fraction of each split (the survey: 0.2).
        standardize: Feature statistics of the federated settings: "federated" (pooled statistics
            from per-client sums, no data shared) or "local" (each client its own).
        cohorts: Synthetic cohorts of the lesson's "one cohort is one draw" section.
    """

    preset: str = "classroom"
    rounds: int = 20
    local_steps: int = 10
    batch_size: int = 32
    lr: float = 0.1
    optimizer: str = "sgd"
    weight_decay: float = 1e-2
    eval_every: int = 10**6  # the lesson evaluates round 0 and the last round only (curves ask for more)
    eval_batch_size: int = 4096
    head_steps: int = 0
    mu: float = 0.1
    fedprox_steps: int | None = None
    fedsgd_rounds: int | None = None
    splits: int = 5
    test_fraction: float = 0.2
    standardize: str = "federated"
    cohorts: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mu < 0:
            raise ValueError(f"TabularConfig.mu must be >= 0, got {self.mu!r}")
        if self.fedsgd_rounds is not None and self.fedsgd_rounds <= 0:
            raise ValueError(f"TabularConfig.fedsgd_rounds must be positive or None (= rounds), "
                             f"got {self.fedsgd_rounds!r}")
        if self.splits <= 0 or self.cohorts <= 0:
            raise ValueError(f"TabularConfig.splits and cohorts must be positive, got {self.splits!r} and "
                             f"{self.cohorts!r}")
        if self.fedprox_steps is not None and self.fedprox_steps <= 0:
            raise ValueError(f"TabularConfig.fedprox_steps must be positive or None (one epoch), "
                             f"got {self.fedprox_steps!r}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"TabularConfig.test_fraction must be in (0, 1), got {self.test_fraction!r}")
        if self.standardize not in ("federated", "local"):
            raise ValueError(f"TabularConfig.standardize must be 'federated' or 'local', got {self.standardize!r}")
        if self.weight_decay < 0:
            raise ValueError(f"TabularConfig.weight_decay must be >= 0, got {self.weight_decay!r}")

    @property
    def num_fedsgd_rounds(self) -> int:
        """FedSGD's rounds (``fedsgd_rounds``, default ``rounds``)."""
        return self.fedsgd_rounds or self.rounds


TABULAR_PRESETS: dict[str, TabularConfig] = {
    "smoke": TabularConfig(preset="smoke", rounds=10, splits=2, cohorts=2),  # a quick check
    "classroom": TabularConfig(preset="classroom"),
    "paper": TabularConfig(preset="paper", rounds=100),  # longer: the federated settings closer to the optimum
}

#: The one preset table: ``PRESETS[family][preset]``, families "segmentation" and "tabular".
PRESETS: dict[str, dict[str, Config]] = {"segmentation": SEGMENTATION_PRESETS, "tabular": TABULAR_PRESETS}
PRESET_NAMES: tuple[str, ...] = ("smoke", "classroom", "paper")


def parse_overrides(items: Sequence[str], base: Config) -> dict[str, object]:
    """Command-line ``FIELD=VALUE`` strings as typed field changes of ``base``.

    Each value is read as the type of the field's current value in ``base`` (int, float or text; a field
    that is None takes an int or "none"), so ``["rounds=90", "lr=5e-4"]`` gives ``{"rounds": 90, "lr": 0.0005}``.

    Args:
        items: ``FIELD=VALUE`` strings.
        base: The config the changes apply to (usually a preset).

    Raises:
        ValueError: for an item without ``=``, an unknown field (the message lists them), the ``preset``
            field (choose the preset itself instead), or a value that is not of the field's type.
    """
    names = [f.name for f in dataclasses.fields(base)]
    out: dict[str, object] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key, text = key.strip(), text.strip()
        if not sep or not key:
            raise ValueError(f"expected FIELD=VALUE, e.g. rounds=90; got {item!r}")
        if key == "preset":
            raise ValueError("the preset is chosen with --preset, not changed with FIELD=VALUE")
        if key not in names:
            raise ValueError(f"unknown setting {key!r}; settings: {', '.join(n for n in names if n != 'preset')}")
        current = getattr(base, key)
        try:
            if isinstance(current, int):
                out[key] = int(text)
            elif isinstance(current, float):
                out[key] = float(text)
            elif current is None:
                out[key] = None if text.lower() == "none" else int(text)
            else:
                out[key] = text
        except ValueError:
            kind = {int: "an integer", float: "a number"}.get(type(current), "an integer or none")
            raise ValueError(f"setting {key!r} takes {kind}, got {text!r}") from None
    return out


def get_config(preset: str | None = None, family: str = "segmentation", *, env_wins: bool = False,
               **overrides: object) -> Config:
    """Return a preset of a lesson family, optionally with some fields overridden.

    This is the only place that reads ``$FEDLAB_PRESET``. By default it is the fallback when no preset
    is given; with ``env_wins=True`` (what :func:`fedlab.start_run` uses) it wins over ``preset``, so
    that nbval or a plain ``jupyter nbconvert`` can choose the preset of a notebook whose parameters
    cell says otherwise. A script or benchmark that names a preset gets that preset.

    Args:
        preset: "smoke", "classroom" or "paper"; ``None`` or "" = ``$FEDLAB_PRESET``, else "classroom".
        family: "segmentation" (a :class:`Config`) or "tabular" (a :class:`TabularConfig`).
        env_wins: Let a set ``$FEDLAB_PRESET`` override ``preset``.
        **overrides: Fields to change, e.g. ``rounds=5``.

    Raises:
        ValueError: for an unknown family or preset (the message lists the valid ones), or an invalid
            field value.
    """
    if family not in PRESETS:
        raise ValueError(f"Unknown preset family {family!r}; choose one of {sorted(PRESETS)}.")
    env = os.environ.get(PRESET_ENV) or None
    name = (env or preset if env_wins else preset or env) or "classroom"
    table = PRESETS[family]
    if name not in table:
        source = f"${PRESET_ENV}" if name == env else "preset"
        raise ValueError(f"Unknown preset {name!r} (from {source}); choose one of {sorted(table)}.")
    return table[name].replace(**overrides) if overrides else table[name]
