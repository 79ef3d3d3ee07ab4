"""Receptive fields measured with gradients.

- `gradient_receptive_field`: the *theoretical* receptive field, found without any formula —
  the built-in check of `summary`'s numbers. A one-hot at unit (y, x) of a layer is
  back-propagated through a float64 copy of the model whose non-linearities are the identity,
  whose max-pools are sum-pools (so every window element gets gradient) and whose weights are
  positive constants (so nothing cancels); the box of non-zero input gradient is the region
  the unit sees, clipped to the image.
- `effective_receptive_field` (Luo et al., "Understanding the Effective Receptive Field in
  Deep Convolutional Neural Networks", NeurIPS 2016): for a *trained* model, the mean of
  |∂ unit / ∂ input| over real images — how much each input pixel really matters.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnkit.analysis.summary.core import Box, box_of, input_shape_of, run_traced, summary
from cnnkit.analysis.summary.rules import SIGNATURES, as_pair
from cnnkit.calc.arithmetic import conv_output_size, effective_kernel
from cnnkit.core.errors import CnnkitError

__all__ = ["ERF", "effective_receptive_field", "gradient_receptive_field"]

# Replaced by the identity in the gradient oracle (monotone: they never change the RF).
_NONLINEAR = frozenset(
    """relu relu_ relu6 leaky_relu leaky_relu_ elu elu_ selu celu gelu silu mish hardswish
    hardsigmoid hardtanh hardtanh_ sigmoid tanh softplus softsign prelu rrelu logsigmoid
    threshold dropout dropout2d dropout1d alpha_dropout feature_alpha_dropout""".split()
)


def _bind(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    names = SIGNATURES[name]
    if "return_indices" not in names:
        names = (*names, "return_indices")
    bound = dict(zip(names, args, strict=False))
    bound.update(kwargs)
    return bound


def sum_pool2d(
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> Any:
    """Sum over each window, with `F.max_pool2d`'s geometry (padding, dilation, ceil_mode)."""
    import torch
    import torch.nn.functional as F

    k = as_pair(kernel_size, 1)
    s = as_pair(stride, 0)
    s = (s[0] or k[0], s[1] or k[1])
    p = as_pair(padding, 0)
    d = as_pair(dilation, 1)
    _, c, h, w = x.shape  # (N, C, H, W)
    out = [
        conv_output_size(n, k[a], s[a], p[a], d[a], ceil_mode=ceil_mode)
        for a, n in enumerate((h, w))
    ]
    extra = [max(0, (out[a] - 1) * s[a] + effective_kernel(k[a], d[a]) - (n + 2 * p[a]))
             for a, n in enumerate((h, w))]  # fmt: skip
    padded = F.pad(x, (p[1], p[1] + extra[1], p[0], p[0] + extra[0]))
    weight = torch.ones((c, 1, k[0], k[1]), dtype=x.dtype, device=x.device)
    y = F.conv2d(padded, weight, stride=s, dilation=d, groups=c)  # (N, C, H_out', W_out')
    return y[..., : out[0], : out[1]]


def _oracle_replace(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    from cnnkit.analysis.summary.trace import op_name

    name = op_name(func)
    if name in _NONLINEAR:
        return args[0] if args else kwargs["input"]
    if name == "max_pool2d":
        b = _bind("max_pool2d", args, kwargs)
        y = sum_pool2d(
            b["input"], b["kernel_size"], b.get("stride"), b.get("padding", 0),
            b.get("dilation", 1), bool(b.get("ceil_mode", False)),
        )  # fmt: skip
        return (y, y.long()) if b.get("return_indices") else y
    if name == "adaptive_max_pool2d":
        import torch.nn.functional as F

        b = _bind("adaptive_max_pool2d", args, kwargs)
        y = F.adaptive_avg_pool2d(b["input"], b["output_size"])
        return (y, y.long()) if b.get("return_indices") else y
    return NotImplemented


def _positive_copy(model: Any) -> Any:
    import torch

    clone = copy.deepcopy(model).double()
    with torch.no_grad():
        for name, p in clone.named_parameters():
            if p.dim() >= 2:
                p.fill_(1.0 / max(1, p[0].numel()))  # positive, ~unit gain per layer
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.fill_(1.0)
        for name, b in clone.named_buffers():
            if name.endswith("running_var"):
                b.fill_(1.0)
            elif name.endswith("running_mean"):
                b.zero_()
    return clone


def _unit_output(trace: Any, layer: str | None, model_name: str) -> Any:
    """The output tensor of row `layer` of the traced run (None: the model's output)."""
    from cnnkit.analysis.summary.core import row_names, row_output

    if layer is None:
        out = trace.output
        while isinstance(out, list | tuple):
            out = out[0]
        return out
    # A row of the full listing, else a module folding others at its own depth ("layer1.1").
    for depth in (None, layer.count(".") + 1):
        for (call, nodes), name in row_names(trace, depth):
            if name == layer:
                node = row_output(trace, call, nodes)
                if node is not None and node.output is not None:
                    return node.output
    raise CnnkitError.from_template(
        "No layer named {layer!r} in {model_name}.", layer=layer, model_name=model_name
    )


def _pick(out: Any, unit: tuple[int, int], layer: str | None) -> Any:
    if out.dim() == 4:
        _, _, oh, ow = out.shape  # (N, C, H_out, W_out)
        y, x = unit
        if not (0 <= y < oh and 0 <= x < ow):
            raise CnnkitError.from_template(
                "The unit {unit!r} is outside the {oh}×{ow} output of {layer!r}.",
                unit=unit,
                oh=oh,
                ow=ow,
                layer=layer,
            )
        return out[0, :, y, x].sum()
    return out[0].sum()


def gradient_receptive_field(
    model: Any,
    layer: str | None,
    unit: tuple[int, int],
    input_size: Sequence[int],
) -> Box:
    """Box of input pixels with non-zero gradient for unit (y, x) of `layer` (a row name of
    `summary(model, input_size)`, or None for the model's output), computed on a modified
    copy of the model (module docstring). The model itself is not changed."""
    import torch

    shape = input_shape_of(input_size)
    clone = _positive_copy(model)
    x = torch.ones(shape, dtype=torch.float64, requires_grad=True)
    trace, _ = run_traced(clone, shape, replace=_oracle_replace, x=x, grad=True)
    out = _unit_output(trace, layer, type(model).__name__)
    _pick(out, unit, layer).backward()
    assert x.grad is not None
    mask = (x.grad[0].abs().sum(0) > 0).numpy()  # (H, W)
    rows, cols = np.nonzero(mask)
    h, w = mask.shape
    if rows.size == 0:
        raise CnnkitError.from_template(
            "Unit {unit!r} of {layer!r} receives no gradient from the input.",
            unit=unit,
            layer=layer,
        )
    top, bottom, left, right = (
        int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())
    )  # fmt: skip
    return Box(top, bottom, left, right, (top, bottom, left, right), (h, w))


@dataclass(frozen=True)
class ERF:
    """Effective receptive field of one unit: `grad` (H, W) = mean |∂ unit / ∂ input| over
    `n_images` images, scaled to max 1; `theoretical` the box from `summary`."""

    layer: str
    unit: tuple[int, int]
    grad: np.ndarray
    theoretical: Box
    n_images: int
    mass_inside: float  # fraction of the gradient mass inside the theoretical box
    radius_95: float  # radius (pixels, around the centre) holding 95% of the gradient mass


def effective_receptive_field(
    model: Any,
    images: Any,
    *,
    layer: str | None = None,
    unit: tuple[int, int] | None = None,
    batch_size: int = 64,
    device: str = "cpu",
) -> ERF:
    """ERF of a unit (default: the centre unit of the last layer with a local receptive field)
    over `images`, a float array (N, C, H, W) already normalised as in training. The
    gradients are computed on `device` (auto, cpu, cuda, mps); the model's device is restored.
    """
    import torch

    from cnnkit.models.device import resolve_device

    target = torch.device(resolve_device(device, func="effective_receptive_field"))

    images = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    if images.dim() != 4 or len(images) == 0:
        raise CnnkitError.from_template(
            "effective_receptive_field needs images (N, C, H, W). Got {shape}.",
            shape=tuple(images.shape),
        )
    s = summary(model, tuple(images.shape[1:]))
    if layer is None:
        spatial = [r for r in s.rows if r.rf.status == "local" and len(r.output_shape) == 4]
        if not spatial:
            raise CnnkitError.from_template(
                "{model} has no layer with a local receptive field.", model=s.model
            )
        layer = spatial[-1].name
    row = s.row(layer)
    if len(row.output_shape) != 4:
        raise CnnkitError.from_template(
            "Layer {layer!r} has no spatial output ({output_shape}).",
            layer=layer,
            output_shape=row.output_shape,
        )
    if unit is None:
        unit = (row.output_shape[2] // 2, row.output_shape[3] // 2)
    theoretical = box_of(row.rf, unit, (s.input_shape[-2], s.input_shape[-1]), layer)
    total = torch.zeros(images.shape[2:], dtype=torch.float64)  # (H, W), on the CPU
    home = next(model.parameters(), torch.empty(0)).device
    try:
        model.to(target)
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].to(target).clone().requires_grad_(True)
            trace, _ = run_traced(model, tuple(x.shape), device=target.type, x=x, grad=True)
            out = _unit_output(trace, layer, s.model)
            out[:, :, unit[0], unit[1]].sum().backward()  # every image's centre unit at once
            assert x.grad is not None
            total += x.grad.abs().sum(1).sum(0).double().cpu()  # (H, W)
    finally:
        model.to(home)
    grad = (total / total.max().clamp_min(1e-30)).numpy()
    t, b, left, r = theoretical.clipped
    mass = float(grad.sum())
    inside = float(grad[t : b + 1, left : r + 1].sum()) / mass if mass else 0.0
    yy, xx = np.mgrid[: grad.shape[0], : grad.shape[1]]
    cy = (theoretical.top + theoretical.bottom) / 2
    cx = (theoretical.left + theoretical.right) / 2
    dist = np.maximum(np.abs(yy - cy), np.abs(xx - cx)).ravel()
    order = np.argsort(dist)
    cum = np.cumsum(grad.ravel()[order]) / max(mass, 1e-30)
    radius = float(dist[order][min(np.searchsorted(cum, 0.95), len(cum) - 1)])
    return ERF(layer, unit, grad, theoretical, len(images), inside, radius)
