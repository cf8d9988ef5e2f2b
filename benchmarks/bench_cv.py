"""What `dfdc cv`'s settings buy on the two parts it spends its time on, timed side by side in one run.

    python benchmarks/bench_cv.py [--repeats 3] [--device cpu]

The frozen early blocks of Lite0 at 224 px over a batch of 32 crops (features, computed once per
crop view) in the default memory layout, in dfdc.device.fast_layout's, and in that layout at the
device's inference precision (as cv computes them); and one fine-tuning step of the last two
blocks over a batch of 32 of their maps (float32; one per step of every fold) in the default
layout and fast_layout's. Prints the median seconds per batch of each, the variants alternated
A B A B so a busy machine slows them all, and the ratio of the default to each.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from contextlib import nullcontext
from typing import ContextManager

import torch

from dfdc.device import fast_layout, inference_dtype, pick_device, scoring_precision
from dfdc.models import create_model

BATCH, SIZE, TUNED = 32, 224, 2


def time_early(model: torch.nn.Module, x: torch.Tensor, block: int, precision: ContextManager) -> float:
    with torch.inference_mode(), precision:
        model.early(x, block)  # warm-up: oneDNN picks its kernels on the first call
        start = time.perf_counter()
        model.early(x, block)
        return time.perf_counter() - start


def time_step(model: torch.nn.Module, h: torch.Tensor, block: int) -> float:
    optimizer = torch.optim.AdamW(model.late_parameters(block), lr=1e-4)

    def step() -> None:
        loss = model.late(h, block).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = pick_device(args.device)
    torch.manual_seed(0)
    default = create_model("frame", backbone="tf_efficientnet_lite0", pretrained="lite0", pooling="last")
    default = default.to(device).eval()
    fast = fast_layout(copy.deepcopy(default), device)
    block = len(default.encoder.blocks) - TUNED
    x = torch.randn(BATCH, 3, SIZE, SIZE, device=device)
    with torch.inference_mode():
        h = default.early(x, block).clone()
    dtype = str(inference_dtype(device)).removeprefix("torch.")
    early = {"default layout": (default, nullcontext), "fast_layout": (fast, nullcontext),
             f"fast_layout, {dtype}": (fast, lambda: scoring_precision(device))}
    times = {name: [] for name in early}
    steps = {"default layout": default, "fast_layout": fast}
    step_times = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, (model, precision) in early.items():
            times[name].append(time_early(model, x, block, precision()))
        for name, model in steps.items():
            tuned = copy.deepcopy(model).train()
            for m in tuned.modules():  # as dfdc cv tunes: BatchNorm statistics kept
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.eval()
            step_times[name].append(time_step(tuned, h.clone(), block))
    print(f"device {device}, torch threads {torch.get_num_threads()}, batch {BATCH}, {SIZE} px, "
          f"median of {args.repeats} alternated repeats, seconds per batch")
    for label, measured in (("frozen early blocks", times), (f"fine-tuning step, last {TUNED} blocks", step_times)):
        base = statistics.median(measured["default layout"])
        print(f"{label}: " + ", ".join(f"{name} {statistics.median(t):.3f} s ({base / statistics.median(t):.2f}x)"
                                      for name, t in measured.items()))

if __name__ == "__main__":
    main()
