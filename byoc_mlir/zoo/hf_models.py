"""Zoo models from HF ``transformers`` configs: random weights, nothing downloaded.

Building a model from a config object makes no hub request. Two adjustments make them
exportable and numerically meaningful:

- non-persistent buffers (BERT's ``position_ids``/``token_type_ids``) are made
  persistent, so the frozen export carries them as constants;
- HF initialises convolutions with small normal weights, so a deep CNN's activations
  vanish and every output looks alike: convolutions are re-initialised (Kaiming) and
  BatchNorm statistics randomised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from byoc_mlir.zoo import Instance
from byoc_mlir.zoo.torch_models import SEED, inputs, instance, randomise_batchnorm, seeded


def _persistent_buffers(model: Any) -> None:
    for m in model.modules():
        m._non_persistent_buffers_set.clear()


def _logits(model: Any) -> Any:
    """Wraps an image classifier so it returns the logits tensor (export-friendly)."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixels: Any) -> Any:
            return self.model(pixels, return_dict=True).logits

    Logits.__name__ = type(model).__name__
    return Logits()


def _bert_with_mask(bert: Any) -> Any:
    """BERT as (ids, mask) -> (hidden states, pooled), the padding mask made additive here.

    transformers builds its 4-D mask with a boolean scalar literal that the torch → linalg
    conversion cannot legalise; the additive mask computed from the 0/1 mask gives
    bit-identical outputs to ``BertModel(ids, attention_mask=mask)``.
    """
    import torch

    class BertModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, ids: Any, mask: Any) -> tuple[Any, Any]:
            embedded = self.bert.embeddings(input_ids=ids)
            additive = (1.0 - mask[:, None, None, :].to(embedded.dtype)) * torch.finfo(
                embedded.dtype
            ).min
            hidden = self.bert.encoder(embedded, attention_mask=additive)[0]
            return hidden, self.bert.pooler(hidden)

    return BertModel()


def _bert(work_dir: Path, layers: int, hidden: int, heads: int, seq: int) -> Instance:
    """A BERT encoder from a config on a batch of 1 x ``seq`` tokens, the last quarter padding."""
    from transformers import BertConfig, BertModel

    # Config fields go through **kwargs in transformers' type stubs.
    fields: dict[str, Any] = {"hidden_size": hidden, "num_hidden_layers": layers}
    fields |= {"num_attention_heads": heads, "intermediate_size": 4 * hidden}
    fields["attn_implementation"] = "eager"
    config = BertConfig(**fields)
    model = seeded(lambda: BertModel(config))
    _persistent_buffers(model)
    rng = np.random.default_rng(SEED)
    ids = rng.integers(0, config.vocab_size, size=(1, seq)).astype(np.int64)
    mask = np.ones((1, seq), np.int64)
    mask[:, seq * 3 // 4 :] = 0  # padding at the end: the mask matters
    return instance(_bert_with_mask(model), ids, mask)


def bert_tiny(work_dir: Path) -> Instance:
    """BERT-tiny's shape (2 layers, hidden 128, 2 heads) on a batch of 1 x 32 tokens."""
    return _bert(work_dir, layers=2, hidden=128, heads=2, seq=32)


def bert_mini(work_dir: Path) -> Instance:
    """BERT-mini's shape (4 layers, hidden 256, 4 heads, ffn 1024) on 1 x 128 tokens."""
    return _bert(work_dir, layers=4, hidden=256, heads=4, seq=128)


def _kaiming_convs(model: Any) -> Any:
    import torch

    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model


def resnet18(work_dir: Path) -> Instance:
    """ResNet-18 (basic blocks 2-2-2-2) on one 224x224 image; 1000 logits."""
    from transformers import ResNetConfig, ResNetForImageClassification

    fields: dict[str, Any] = {"embedding_size": 64, "hidden_sizes": [64, 128, 256, 512]}
    fields |= {"depths": [2, 2, 2, 2], "layer_type": "basic", "num_labels": 1000}
    config = ResNetConfig(**fields)
    model = seeded(lambda: _kaiming_convs(ResNetForImageClassification(config)))
    randomise_batchnorm(model)
    return instance(_logits(model), inputs(1, 3, 224, 224))


def mobilenet_v2(work_dir: Path) -> Instance:
    """MobileNetV2 (the default config: width 1.0, ReLU6, TF padding) on one 224x224
    image; 1000 logits."""
    from transformers import MobileNetV2Config, MobileNetV2ForImageClassification

    fields: dict[str, Any] = {"num_labels": 1000}
    config = MobileNetV2Config(**fields)
    model = seeded(lambda: _kaiming_convs(MobileNetV2ForImageClassification(config)))
    randomise_batchnorm(model)
    return instance(_logits(model), inputs(1, 3, 224, 224))
