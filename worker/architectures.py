"""The trainable models, keyed by the names in ``core.spec.architectures.ARCHITECTURES`` (whose
entries hold their hyperparameters, defaults and bounds; the api checks a spec fits the data
before it gets here).

Every model maps a batch of samples of the dataset's ``feature_shape`` to ``n_outputs`` values
(class scores, or one value for regression)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from core.spec.architectures import ARCHITECTURES, image_shape

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
}


def _norm(kind: str, width: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm1d(width)
    if kind == "layer":
        return nn.LayerNorm(width)
    return nn.Identity()


class Linear(nn.Module):
    """One affine layer over the flattened sample (softmax regression; a multiclass SVM under hinge loss)."""

    def __init__(self, feature_shape: tuple[int, ...], n_outputs: int):
        super().__init__()
        self.fc = nn.Linear(math.prod(feature_shape), n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


class MLP(nn.Module):
    """``depth`` hidden layers of ``width`` units: linear → normalisation → activation → dropout."""

    def __init__(
        self, feature_shape: tuple[int, ...], n_outputs: int, *, depth: int = 2, width: int = 128,
        activation: str = "relu", dropout: float = 0.0, normalization: str = "none",
    ):
        super().__init__()
        layers: list[nn.Module] = []
        fan_in = math.prod(feature_shape)
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width), _norm(normalization, width), _ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            fan_in = width
        layers.append(nn.Linear(fan_in, n_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class CNN1d(nn.Module):
    """1-D convolution blocks over a feature vector (one channel) or a (channels, length) signal,
    then global average pooling and a linear head."""

    def __init__(
        self, feature_shape: tuple[int, ...], n_outputs: int, *, channels: int = 32, depth: int = 2,
        kernel_size: int = 3, activation: str = "relu", dropout: float = 0.0,
    ):
        super().__init__()
        self.in_channels = feature_shape[0] if len(feature_shape) == 2 else 1
        self.length = feature_shape[-1]
        blocks: list[nn.Module] = []
        c_in = self.in_channels
        for _ in range(depth):
            blocks += [nn.Conv1d(c_in, channels, kernel_size, padding=kernel_size // 2), _ACTIVATIONS[activation]()]
            if dropout > 0:
                blocks.append(nn.Dropout(dropout))
            c_in = channels
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], self.in_channels, self.length)
        return self.head(self.features(x).mean(dim=-1))


class CNN2d(nn.Module):
    """LeNet-5: two (5×5 conv → activation → 2×2 max-pool) stages, then three dense layers.
    Convolutions are padded so that 8×8 digits keep 2×2 pixels after both poolings."""

    def __init__(
        self, feature_shape: tuple[int, ...], n_outputs: int, *, channels: int = 16, hidden: int = 120,
        activation: str = "relu", dropout: float = 0.0,
    ):
        super().__init__()
        shape = image_shape(tuple(feature_shape))
        if shape is None:
            raise ValueError(f"cnn2d needs images; got samples of shape {list(feature_shape)}")
        self.image = shape
        c, h, w = shape
        act = _ACTIVATIONS[activation]
        self.features = nn.Sequential(
            nn.Conv2d(c, channels, 5, padding=2), act(), nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 5, padding=2), act(), nn.MaxPool2d(2),
        )
        flat = 2 * channels * (h // 4) * (w // 4)
        hidden2 = max(1, int(hidden * 0.7))
        drop = [nn.Dropout(dropout)] if dropout > 0 else []
        self.classifier = nn.Sequential(
            nn.Linear(flat, hidden), act(), *drop, nn.Linear(hidden, hidden2), act(), *drop,
            nn.Linear(hidden2, n_outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], *self.image)
        return self.classifier(self.features(x).flatten(1))


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """A small ResNet: a 3×3 stem, ``stages`` stages of ``blocks`` basic blocks (channels
    doubling and resolution halving from the second stage on), global pooling, a linear head."""

    def __init__(self, feature_shape: tuple[int, ...], n_outputs: int, *, width: int = 16, blocks: int = 2, stages: int = 2):
        super().__init__()
        shape = image_shape(tuple(feature_shape))
        if shape is None:
            raise ValueError(f"resnet needs images; got samples of shape {list(feature_shape)}")
        self.image = shape
        self.stem = nn.Sequential(nn.Conv2d(shape[0], width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        layers: list[nn.Module] = []
        c_in = width
        for stage in range(stages):
            c_out = width * 2**stage
            for b in range(blocks):
                layers.append(_BasicBlock(c_in, c_out, stride=2 if stage > 0 and b == 0 else 1))
                c_in = c_out
        self.stages = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], *self.image)
        return self.head(self.stages(self.stem(x)).mean(dim=(2, 3)))


class Transformer(nn.Module):
    """A small pre-norm Transformer encoder.  A feature vector is a sequence of scalar tokens, a
    (length, features) sample a sequence of vectors; tokens get a learned position embedding and
    the encoder output is mean-pooled into a linear head."""

    def __init__(
        self, feature_shape: tuple[int, ...], n_outputs: int, *, d_model: int = 32, heads: int = 4,
        layers: int = 2, ff: int = 64, dropout: float = 0.0,
    ):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"heads: {heads} does not divide d_model={d_model}")
        if len(feature_shape) >= 2:
            self.length, self.token_dim = feature_shape[0], math.prod(feature_shape[1:])
        else:
            self.length, self.token_dim = math.prod(feature_shape), 1
        self.embed = nn.Linear(self.token_dim, d_model)
        self.position = nn.Parameter(torch.randn(self.length, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d_model, heads, dim_feedforward=ff, dropout=dropout, batch_first=True, norm_first=True,
        )
        # nested tensors are an inference fast path; off keeps train and eval numerics identical
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x.reshape(x.shape[0], self.length, self.token_dim)) + self.position
        return self.head(self.norm(self.encoder(tokens)).mean(dim=1))


MODELS: dict[str, type[nn.Module]] = {
    name: globals()[entry.class_path.rpartition(".")[2]] for name, entry in ARCHITECTURES.items()
}


def build_model(name: str, params: dict[str, Any], feature_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """The architecture ``name`` with hyperparameters ``params`` (validated, with defaults filled)."""
    if name not in MODELS:
        raise KeyError(f"unknown architecture {name!r}; known: {sorted(MODELS)}")
    entry = ARCHITECTURES[name]
    full = entry.validate_params(dict(params), path="architecture")
    return MODELS[name](tuple(feature_shape), n_outputs, **full)
