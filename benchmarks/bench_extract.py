"""How fast the training data flows: extraction videos/s, and loader clips/s beside one train step.

    python benchmarks/bench_extract.py [--videos 12] [--workers 2] [--loader-workers 2] [--device cpu]

Makes a synthetic DFDC set (dfdc.synth.make_sample), extracts it into a face cache, then times
the clip DataLoader (training augmentation, batch 8, T=10, 224 px) against one training step of
the default sequence model on the same batch shape. The loader keeps up when its time per batch
is below the step's (ratio < 1); with more loader workers than cores the two compete for the CPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from dfdc.sample.synth import make_sample
from dfdc.training.augment import ClipAugment
from dfdc.training.dataset import BalancedSampler, ClipDataset
from dfdc.training.extract import run_extract

BATCH, T, SIZE = 8, 10, 224


def bench_extract(sample: Path, cache: Path, workers: int, weights: Path | None) -> float:
    start = time.perf_counter()
    summary = run_extract(sample, cache, frames=15, size=SIZE, workers=workers, weights=weights)
    return summary["done"] / (time.perf_counter() - start)


def bench_loader(cache: Path, workers: int, batches: int) -> float:
    """Clips per second out of a DataLoader, after its workers have started."""
    data = ClipDataset(cache, frames=T, transform=ClipAugment(SIZE))
    sampler = BalancedSampler(data.labels)
    loader = DataLoader(data, batch_size=BATCH, sampler=sampler, num_workers=workers, persistent_workers=workers > 0)
    it, done = iter(loader), 0
    next(it)  # worker start-up is paid once per training, not per batch
    start = time.perf_counter()
    while done < batches * BATCH:
        try:
            done += len(next(it)[1])
        except StopIteration:
            it = iter(loader)
    return done / (time.perf_counter() - start)


def bench_step(device: str, steps: int) -> float:
    """Seconds per training step (forward, backward, AdamW) of create_model("sequence")."""
    from dfdc.models import create_model

    model = create_model("sequence").to(device).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(BATCH, T, 3, SIZE, SIZE, device=device)
    y = torch.randint(0, 2, (BATCH,), device=device).float()

    def step() -> None:
        optimiser.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(model(x), y).backward()
        optimiser.step()

    step()  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=12, help="synthetic videos to make and extract")
    parser.add_argument("--workers", type=int, default=2, help="extraction processes (also timed with 1)")
    parser.add_argument("--loader-workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--batches", type=int, default=10, help="batches to time the loader on")
    parser.add_argument("--steps", type=int, default=2, help="training steps to time")
    parser.add_argument("--device", default="cpu", help="where the training step runs")
    parser.add_argument("--weights", type=Path, help="BlazeFace weights folder (else $DFDC_WEIGHTS, ./weights)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sample = make_sample(root / "sample", videos=args.videos, seed=0, weights=args.weights)
        print(f"make-sample: {args.videos} videos, 640x360, 3 s at 15 fps")
        rates = {w: bench_extract(sample, root / f"cache{w}", w, args.weights) for w in sorted({1, args.workers})}
        clips = bench_loader(root / "cache1", args.loader_workers, args.batches)
    step = bench_step(args.device, args.steps)

    print()
    for w, rate in rates.items():
        print(f"extract, {w} worker(s): {rate:6.2f} videos/s ({1 / rate:.2f} s/video)")
    loader_batch = BATCH / clips
    print(f"loader ({args.loader_workers} workers): {clips:6.1f} clips/s = {loader_batch:.3f} s per batch of {BATCH}")
    print(f"train step ({args.device}):     {step:.3f} s per batch of {BATCH} x {T} x 3 x {SIZE} x {SIZE}")
    print(f"loader time / step time = {loader_batch / step:.3f} "
          f"({'loader keeps up' if loader_batch < step else 'LOADER IS THE BOTTLENECK'})")


if __name__ == "__main__":
    main()
