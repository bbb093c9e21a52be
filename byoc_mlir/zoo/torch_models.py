"""Zoo models written in plain PyTorch: an MLP, a small CNN, a transformer encoder layer.

Weights come from torch's default initialisation under a fixed seed (the global RNG is
forked, so building a model leaves the caller's torch RNG untouched); BatchNorm running
statistics are randomised so the layers compute something. References are the module's
own eval-mode outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from byoc_mlir.zoo import Instance

SEED = 0


def seeded(make: Callable[[], Any], seed: int = SEED) -> Any:
    """Builds ``make()`` under ``torch.manual_seed(seed)`` without touching the caller's RNG."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def instance(module: Any, *inputs: np.ndarray) -> Instance:
    """Evaluates ``module`` (eval mode, no grad) on ``inputs``: the reference outputs."""
    import torch

    module.eval()
    args = tuple(torch.from_numpy(x) for x in inputs)
    with torch.no_grad():
        out = module(*args)
    outs = out if isinstance(out, tuple | list) else (out,)
    expected = [o.detach().numpy().copy() for o in outs]
    return Instance(module, list(inputs), expected, example_inputs=args)


def randomise_batchnorm(module: Any, seed: int = SEED) -> None:
    """Gives every BatchNorm random affine parameters and running statistics."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                bn: Any = m  # affine with running stats: weight/bias/stats are not None
                n = bn.num_features
                bn.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                bn.bias.copy_(torch.randn(n, generator=gen) * 0.1)
                bn.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                bn.running_var.copy_(torch.rand(n, generator=gen) + 0.5)


def inputs(*shape: int, seed: int = SEED) -> np.ndarray:
    """Seeded standard-normal float32 inputs."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def mlp(work_dir: Path) -> Instance:
    from torch import nn

    model = seeded(
        lambda: nn.Sequential(
            nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)
        )
    )
    return instance(model, inputs(8, 64))


def cnn(work_dir: Path) -> Instance:
    from torch import nn

    def make() -> Any:
        return nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(32, 10),
        )

    model = seeded(make)
    randomise_batchnorm(model)
    return instance(model, inputs(2, 3, 32, 32))


def transformer(work_dir: Path) -> Instance:
    from torch import nn

    model = seeded(
        lambda: nn.TransformerEncoderLayer(
            d_model=64, nhead=4, dim_feedforward=128, dropout=0.0, batch_first=True
        )
    )
    return instance(model, inputs(2, 16, 64))
