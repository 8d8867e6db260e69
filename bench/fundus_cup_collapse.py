"""Experiment: why some classroom runs on the synthetic fundus federation never learn the optic cup.

In the three-seed fundus sweep with the LC-Fed authors' head initialisation, fedlab's default until
December 2026 (``bench/results/head_init/fundus_kaiming_fan_out_final.csv``), seed 0 failed for most
methods: the cup channel marked the whole optic disc. A seed there sets both the synthetic data and the run
(initial model and batches). This experiment runs FedAvg at the classroom preset with the two seeds
swapped, to see which one the failure follows, and then once more with the failing run's initial
model changed in one way only: each output channel's bias is shifted so that its mean initial
logit on the training images is the logit of that label's share of the pixels (in the spirit of the
"prior" initialisation of Lin et al., Focal Loss for Dense Object Detection, 2017, sec. 4.1). That
shift uses the pooled training labels of every site, so it is a diagnostic, not a federated method.
Then the failing run with its own initial model but another loss: MONAI's ``DiceCELoss`` (soft
Dice plus binary cross-entropy on the sigmoid outputs, as nnU-Net trains) instead of the paper's
soft Dice alone. Last, the failing run with two other initialisations of the head (a 1x1 convolution,
``Config.head_init``), which need no data: PyTorch's default ("pytorch_default"; the LC-Fed authors'
U-Net, and fedlab until December 2026, draw it Kaiming normal with fan_out, "kaiming_fan_out", which
for one or two output channels gives weights of SD about 1), and the authors' weights with biases
that cancel the mean logit they give the non-negative decoder feature ("kaiming_fan_out_centred",
fedlab's default since). Every other case starts from the authors' head.

For every run it records the initial mean probability and mean logit of each output channel (on the
training images), the SD of the head's weights and the range of the per-channel means of the decoder
feature the head reads, and, per site, the test Dice of disc and cup and the share of test pixels predicted as cup.

Example (about 7 minutes on 2 cores)::

    OMP_NUM_THREADS=1 python bench/fundus_cup_collapse.py --jobs 2 --out bench/results/fundus_cup_collapse.json

All numbers are on SYNTHETIC data.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

AUTHORS = "kaiming_fan_out"
#: (data seed, run seed, prior initialisation, loss, Config.head_init): the sweep's failing and
#: working seeds, both swaps, the failing run seed started at the label prior, with Dice + CE, and
#: with the two other head initialisations.
CASES = ((0, 0, False, "dice", AUTHORS), (1, 1, False, "dice", AUTHORS), (0, 1, False, "dice", AUTHORS),
         (1, 0, False, "dice", AUTHORS), (1, 0, True, "dice", AUTHORS), (1, 0, False, "dice_ce", AUTHORS),
         (1, 0, False, "dice", "pytorch_default"), (1, 0, False, "dice", "kaiming_fan_out_centred"))


def _label_dice(pred: torch.Tensor, target: torch.Tensor) -> list[float]:
    """Dice of each label, averaged over the split's images: (N, L, H, W) masks -> [L]."""
    from fedlab.metrics.segmentation import segmentation_scores, summarize

    scores = segmentation_scores(pred, target, distances=False)
    summary = summarize({"dice": scores["dice"]}, label_names=["disc", "cup"])
    return [summary["dice_disc"], summary["dice_cup"]]


def _fedavg(loss: str):
    """FedAvg with the paper's soft Dice ("dice") or with MONAI's Dice + cross-entropy ("dice_ce")."""
    from monai.losses import DiceCELoss

    from fedlab.federation.strategies import FedAvg

    if loss == "dice":
        return FedAvg()

    class FedAvgDiceCE(FedAvg):
        def loss_fn(self, task: str, site: int = 0):
            dice_ce = DiceCELoss(sigmoid=True)
            return lambda model, x, y: dice_ce(model(x), y)

    return FedAvgDiceCE()


def run_case(data_seed: int, run_seed: int, prior: bool, loss: str, head: str) -> dict:
    """One FedAvg run at the classroom preset; see the module docstring."""
    torch.set_num_threads(1)
    from fedlab.config import get_config
    from fedlab.data.loading import load_federation
    from fedlab.federation.simulation import initial_model, run_federation
    from fedlab.metrics.segmentation import binarize

    config = get_config("classroom").replace(head_init=head)
    fed = load_federation("fundus", config=config, seed=data_seed)
    model = initial_model(fed, config, run_seed)
    x = torch.cat([s.train.x for s in fed.sites])  # (N, 3, H, W) every site's training images
    y = torch.cat([s.train.y for s in fed.sites])  # (N, 2, H, W) disc, cup
    label_share = y.mean(dim=(0, 2, 3))  # (2,)
    with torch.no_grad():
        logits = model(x)  # (N, 2, H, W)
        if prior:
            out = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)
                   and m.out_channels == y.shape[1]][-1]  # the output layer
            out.bias += torch.logit(label_share) - logits.mean(dim=(0, 2, 3))
            logits = model(x)
        start = torch.sigmoid(logits).mean(dim=(0, 2, 3))  # (2,) mean initial probability per channel
        offset = logits.mean(dim=(0, 2, 3))  # (2,) mean initial logit per channel
        feature_mean = model.features(x).mean(dim=(0, 2, 3))  # (C,) what the head reads, per channel
    t0 = time.perf_counter()
    history = run_federation(_fedavg(loss), fed, config, seed=run_seed, device="cpu", progress=False, model=model)
    sites = {}
    for site, site_model in zip(fed.sites, history.site_models, strict=True):
        site_model.eval()
        with torch.no_grad():
            pred = binarize(site_model(site.test.x))  # (N, 2, H, W)
        disc, cup = _label_dice(pred, site.test.y)
        sites[site.name] = {"dice_disc": round(disc, 3), "dice_cup": round(cup, 3),
                            "cup_predicted_share": round(float(pred[:, 1].float().mean()), 4),
                            "cup_true_share": round(float(site.test.y[:, 1].mean()), 4)}
    return {"data_seed": data_seed, "run_seed": run_seed, "prior_init": prior, "loss": loss, "head_init": head,
            "label_share": [round(float(v), 4) for v in label_share],
            "initial_mean_probability": [round(float(v), 3) for v in start],
            "initial_mean_logit": [round(float(v), 2) for v in offset],
            "head_weight_sd": round(float(model.head.weight.detach().std()), 2),
            "decoder_feature_mean_range": [round(float(feature_mean.min()), 2), round(float(feature_mean.max()), 2)],
            "sites": sites, "seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (one process each)")
    parser.add_argument("--out", default="bench/results/fundus_cup_collapse.json")
    args = parser.parse_args()
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        runs = list(pool.map(run_case, *zip(*CASES, strict=True)))
    for r in runs:
        cup = " ".join(f"{k} {v['dice_cup']:.2f}" for k, v in r["sites"].items())
        print(f"data seed {r['data_seed']} run seed {r['run_seed']} prior {r['prior_init']!s:5} {r['loss']:7} "
              f"head {r['head_init']:23}: "
              f"initial p {r['initial_mean_probability']}  cup Dice {cup}")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {"command": " ".join(["OMP_NUM_THREADS=1 python", *sys.argv]), "commit": commit,
              "synthetic": True, "method": "FedAvg", "preset": "classroom", "runs": runs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
