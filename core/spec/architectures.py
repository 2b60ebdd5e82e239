"""Architecture metadata (no torch): each architecture's hyperparameters, as catalog entries,
and which dataset shapes it can take.  ``worker.architectures`` builds the modules under the
same names; the api rejects a spec whose architecture cannot take the split's data."""

from __future__ import annotations

import math
from typing import Any, Literal

from optim.catalog.schema import CatalogEntry, Hyperparameter


class ArchitectureEntry(CatalogEntry):
    family: Literal["linear", "mlp", "convolutional", "residual", "attention"]
    inputs: tuple[str, ...]  # "vector" (any shape, flattened), "image", "signal", "sequence"


def _int(name, default, lo, description, hi=None):
    return Hyperparameter(name=name, type="int", default=default, minimum=lo, maximum=hi, description=description)


_ACTIVATION = Hyperparameter(
    name="activation", type="choice", default="relu", choices=("relu", "tanh", "gelu", "sigmoid", "leaky_relu"),
    description="Non-linearity between layers.",
)
_DROPOUT = Hyperparameter(
    name="dropout", type="float", default=0.0, minimum=0.0, maximum=1.0, exclusive_maximum=True,
    description="Dropout probability after each hidden layer.",
)
_NORM = Hyperparameter(
    name="normalization", type="choice", default="none", choices=("none", "batch", "layer"),
    description="Normalisation after each hidden layer.",
)

ARCHITECTURES: dict[str, ArchitectureEntry] = {
    e.name: e
    for e in (
        ArchitectureEntry(
            name="linear", class_path="worker.architectures.Linear", family="linear", inputs=("vector",),
            summary="One affine layer: softmax regression, or with hinge loss the multiclass SVM.",
            reference="Crammer & Singer 2001, On the Algorithmic Implementation of Multiclass Kernel-based SVMs",
            hyperparameters=(),
        ),
        ArchitectureEntry(
            name="mlp", class_path="worker.architectures.MLP", family="mlp", inputs=("vector",),
            summary="Multi-layer perceptron over flattened features.",
            reference="Rumelhart, Hinton & Williams 1986, Learning representations by back-propagating errors",
            hyperparameters=(
                _int("depth", 2, 1, "Number of hidden layers.", 16),
                _int("width", 128, 1, "Units per hidden layer.", 8192),
                _ACTIVATION, _DROPOUT, _NORM,
            ),
        ),
        ArchitectureEntry(
            name="cnn1d", class_path="worker.architectures.CNN1d", family="convolutional", inputs=("vector", "signal"),
            summary="1-D convolutions over a feature vector or signal, then global pooling.",
            reference="LeCun et al. 1995, Convolutional networks for images, speech, and time series",
            hyperparameters=(
                _int("channels", 32, 1, "Channels of each convolution.", 1024),
                _int("depth", 2, 1, "Number of convolution blocks.", 8),
                _int("kernel_size", 3, 1, "Convolution kernel length (odd keeps the length).", 31),
                _ACTIVATION, _DROPOUT,
            ),
        ),
        ArchitectureEntry(
            name="cnn2d", class_path="worker.architectures.CNN2d", family="convolutional", inputs=("image",),
            summary="LeNet-5 style: two conv+pool stages and three dense layers, for small images.",
            reference="LeCun et al. 1998, Gradient-based learning applied to document recognition",
            hyperparameters=(
                _int("channels", 16, 1, "Channels of the first convolution (the second has twice).", 512),
                _int("hidden", 120, 1, "Units of the first dense layer (the second has hidden*0.7).", 4096),
                _ACTIVATION, _DROPOUT,
            ),
        ),
        ArchitectureEntry(
            name="resnet", class_path="worker.architectures.ResNet", family="residual", inputs=("image",),
            summary="A small residual network (basic blocks, batch norm) for small images.",
            reference="He et al. 2016, Deep Residual Learning for Image Recognition",
            hyperparameters=(
                _int("width", 16, 1, "Channels of the first stage (doubling per stage).", 256),
                _int("blocks", 2, 1, "Basic blocks per stage.", 8),
                _int("stages", 2, 1, "Stages; each after the first halves the resolution.", 4),
            ),
        ),
        ArchitectureEntry(
            name="transformer", class_path="worker.architectures.Transformer", family="attention",
            inputs=("vector", "sequence"),
            summary="A small Transformer encoder over a sequence (a feature vector is a sequence of scalars).",
            reference="Vaswani et al. 2017, Attention Is All You Need",
            hyperparameters=(
                _int("d_model", 32, 2, "Embedding width.", 1024),
                _int("heads", 4, 1, "Attention heads (must divide d_model).", 32),
                _int("layers", 2, 1, "Encoder layers.", 12),
                _int("ff", 64, 1, "Feed-forward width.", 4096),
                _DROPOUT,
            ),
        ),
    )
}


def image_shape(feature_shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    """(C, H, W) an image model sees for a sample of ``feature_shape``: (H, W), (C, H, W), or a
    flat vector whose length is a perfect square (digits' 64 pixels are 8×8); else None."""
    if len(feature_shape) == 3:
        return feature_shape  # type: ignore[return-value]
    if len(feature_shape) == 2:
        return (1, *feature_shape)  # type: ignore[return-value]
    if len(feature_shape) == 1:
        side = math.isqrt(feature_shape[0])
        if side * side == feature_shape[0] and side >= 4:
            return (1, side, side)
    return None


def architecture_fit_errors(name: str, params: dict[str, Any], feature_shape: tuple[int, ...]
                            ) -> list[tuple[str | None, str]]:
    """Why architecture ``name`` with ``params`` cannot take samples of ``feature_shape`` (empty if it can),
    as ``(hyperparameter at fault, message)``; the field is None when the data's shape is at fault."""
    n_features = math.prod(feature_shape)
    errors: list[tuple[str | None, str]] = []
    if name in ("linear", "mlp"):
        return errors
    if name == "cnn1d":
        length = feature_shape[-1]
        if params.get("kernel_size", 3) > length:
            errors.append(("kernel_size", f"{params.get('kernel_size', 3)} is longer than the signal ({length} values)"))
        return errors
    if name in ("cnn2d", "resnet"):
        shape = image_shape(feature_shape)
        if shape is None:
            errors.append((None,
                f"needs images: samples of shape {list(feature_shape)} are neither (H, W), (C, H, W) "
                "nor a square number of pixels"
            ))
            return errors
        _, h, w = shape
        if name == "cnn2d" and min(h, w) < 4:
            errors.append((None, f"images of {h}×{w} are too small for two 2×2 poolings (need at least 4×4)"))
        if name == "resnet" and min(h, w) < 2 ** (params.get("stages", 2) - 1):
            errors.append(("stages", f"{params.get('stages', 2)} stages halve {h}×{w} images below one pixel"))
        return errors
    if name == "transformer":
        d_model, heads = params.get("d_model", 32), params.get("heads", 4)
        if d_model % heads:
            errors.append(("heads", f"{heads} does not divide d_model={d_model}"))
        if n_features > 4096:
            errors.append((None, f"sequences of {n_features} tokens are too long for the small transformer (max 4096)"))
        return errors
    return [(None, f"unknown architecture {name!r}")]
