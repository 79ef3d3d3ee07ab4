"""Per-op rules for the receptive field: what each op does to it (`effect`), applied by rf.py.

Arguments are read by name or position (`arg`, `SIGNATURES`); the MAC rules, which read them
the same way, are in macs.py. `docs/summary.md` explains both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnnkit.analysis.summary.trace import Node
from cnnkit.calc.arithmetic import effective_kernel_hw, resolve_padding
from cnnkit.core.i18n import Message

__all__ = [
    "NORMS_OVER_SPACE",
    "POINTWISE",
    "POINTWISE_EFFECT",
    "SIGNATURES",
    "ZERO_COST",
    "Effect",
    "Resample",
    "Transposed",
    "Window",
    "arg",
    "as_pair",
    "effect",
]

# Positional parameter names of the torch functions we read arguments from.
SIGNATURES = {
    "conv2d": ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    "conv_transpose2d": (
        "input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation",
    ),
    "max_pool2d": ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "avg_pool2d": ("input", "kernel_size", "stride", "padding", "ceil_mode"),
    "lp_pool2d": ("input", "norm_type", "kernel_size", "stride", "ceil_mode"),
    "interpolate": ("input", "size", "scale_factor", "mode", "align_corners"),
    "pad": ("input", "pad", "mode", "value"),
    "adaptive_max_pool2d": ("input", "output_size", "return_indices"),
    "cat": ("tensors", "dim"),
    "stack": ("tensors", "dim"),
    "softmax": ("input", "dim"),
    "log_softmax": ("input", "dim"),
    "mean": ("input", "dim"),
    "sum": ("input", "dim"),
    "amax": ("input", "dim"),
}  # fmt: skip

POINTWISE = frozenset(
    """relu relu6 leaky_relu elu selu celu gelu silu mish hardswish hardsigmoid hardtanh
    sigmoid tanh softplus softsign prelu rrelu logsigmoid threshold glu
    add sub mul div neg abs exp log sqrt rsqrt pow clamp clip square true_divide floor_divide
    dropout dropout2d dropout1d dropout3d alpha_dropout feature_alpha_dropout
    batch_norm contiguous clone to float double half type_as detach identity
    where maximum minimum erf sin cos reciprocal sign floor ceil round trunc eq ne lt gt le ge
    logical_and logical_or logical_not remainder fmod lerp addcmul addcdiv log1p expm1 log2
    log10 exp2 sinh cosh atan hardshrink softshrink tanhshrink""".split()
)
ZERO_COST = frozenset(
    """dropout dropout2d dropout1d dropout3d alpha_dropout feature_alpha_dropout contiguous
    clone to float double half type_as detach identity view reshape flatten unflatten squeeze
    unsqueeze cat stack getitem setitem permute transpose pad expand expand_as repeat tile
    repeat_interleave broadcast_to chunk split split_with_sizes tensor_split unbind narrow select
    index_select gather roll flip movedim moveaxis swapaxes swapdims t view_as reshape_as tril
    triu masked_fill zeros_like ones_like full_like empty_like new_zeros new_ones new_full
    new_empty bool long int float16 bfloat16 cpu cuda type zero_ fill_ copy_ requires_grad_
    embedding""".split()
)
NORMS_OVER_SPACE = frozenset("instance_norm group_norm layer_norm local_response_norm".split())


@dataclass(frozen=True)
class Window:
    """A sliding window per axis (conv, pooling, padding): the `rf_step` recurrence."""

    kernel_eff: tuple[int, int]
    stride: tuple[int, int]
    pad_before: tuple[int, int]
    approximate: bool = False


@dataclass(frozen=True)
class Transposed:
    """Transposed convolution: the unit spacing shrinks by the stride (see rf.py)."""

    kernel_eff: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class Resample:
    """Resizing by `scale` = out/in per axis; `taps` input units read per output unit."""

    scale: tuple[float, float]
    taps: tuple[int, int]


@dataclass(frozen=True)
class Effect:
    """What an op does to the receptive field: 'window', 'transposed', 'resample',
    'pointwise' (including merges of several inputs), 'global' or 'unknown'."""

    kind: str
    window: Window | Transposed | Resample | None = None
    reason: str = ""


POINTWISE_EFFECT = Effect("pointwise")


def arg(node: Node, name: str, index: int | None = None, default: Any = None) -> Any:
    """Argument `name` of the op: a keyword, else positional `index` (by default its place
    in `SIGNATURES`), else `default`."""
    if name in node.kwargs:
        return node.kwargs[name]
    if index is None:
        names = SIGNATURES.get(node.op, ())
        index = names.index(name) if name in names else None
    if index is not None and index < len(node.args):
        return node.args[index]
    return default


def _arg(node: Node, name: str, default: Any = None) -> Any:
    return arg(node, name, None, default)


def as_pair(value: Any, default: int) -> tuple[int, int]:
    if value is None or (isinstance(value, list | tuple) and len(value) == 0):
        return (default, default)
    if isinstance(value, int):
        return (value, value)
    values = [int(v) for v in value]
    return (values[0], values[-1])


def _spatial_in(node: Node) -> tuple[int, ...]:
    return node.input_shapes[0] if node.input_shapes else ()


def _is_nchw(shape: tuple[int, ...]) -> bool:
    return len(shape) == 4


def _window_of_pool(node: Node) -> Window:
    k = as_pair(_arg(node, "kernel_size"), 1)
    s = as_pair(_arg(node, "stride"), 0)
    s = (s[0] or k[0], s[1] or k[1])
    p = as_pair(_arg(node, "padding", 0), 0)
    d = as_pair(_arg(node, "dilation", 1), 1) if node.op == "max_pool2d" else (1, 1)
    return Window(kernel_eff=effective_kernel_hw(k, d), stride=s, pad_before=p)


def _adaptive(in_hw: tuple[int, int], out_hw: tuple[int, int]) -> Effect:
    if all(i % o == 0 for i, o in zip(in_hw, out_hw, strict=True)):
        k = (in_hw[0] // out_hw[0], in_hw[1] // out_hw[1])
        return Effect("window", Window(kernel_eff=k, stride=k, pad_before=(0, 0)))
    # Windows [floor(i·I/O), ceil((i+1)·I/O)) of unequal length: report the longest.
    taps = tuple(
        max(-(-(i + 1) * n // o) - (i * n // o) for i in range(o))
        for n, o in zip(in_hw, out_hw, strict=True)
    )
    scale = (out_hw[0] / in_hw[0], out_hw[1] / in_hw[1])
    return Effect("resample", Resample(scale=scale, taps=(taps[0], taps[1])))


def _dims(node: Node, name: str, ndim: int) -> set[int] | None:
    dim = _arg(node, name)
    if isinstance(dim, int):
        return {dim % ndim}
    if isinstance(dim, list | tuple) and all(isinstance(d, int) for d in dim):
        return {d % ndim for d in dim}
    return None  # no dim (all of them), or not a dim at all (torch.max(a, b))


def effect(node: Node) -> Effect:
    """The op's effect on the receptive field (rf.py applies it)."""
    op = node.op
    in_shape = _spatial_in(node)
    out_shape = node.shape
    if op == "conv2d":
        weight = _arg(node, "weight")
        k = (int(weight.shape[2]), int(weight.shape[3]))
        s = as_pair(_arg(node, "stride", 1), 1)
        d = as_pair(_arg(node, "dilation", 1), 1)
        (top, _), (left, _) = resolve_padding(_arg(node, "padding", 0), k, d)
        k_eff = effective_kernel_hw(k, d)
        return Effect("window", Window(kernel_eff=k_eff, stride=s, pad_before=(top, left)))
    if op == "conv_transpose2d":
        weight = _arg(node, "weight")
        k = (int(weight.shape[2]), int(weight.shape[3]))
        d = as_pair(_arg(node, "dilation", 1), 1)
        k_eff = effective_kernel_hw(k, d)
        s = as_pair(_arg(node, "stride", 1), 1)
        p = as_pair(_arg(node, "padding", 0), 0)
        return Effect("transposed", Transposed(kernel_eff=k_eff, stride=s, padding=p))
    if op in ("max_pool2d", "avg_pool2d", "lp_pool2d"):
        return Effect("window", _window_of_pool(node))
    if op in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
        if out_shape[-2:] == (1, 1):
            return Effect("global", reason=Message("{op} to 1×1", op=op))
        return _adaptive((in_shape[-2], in_shape[-1]), (out_shape[-2], out_shape[-1]))
    if op == "pad":
        pad = list(_arg(node, "pad"))  # (left, right, top, bottom) for the last two axes
        left = pad[0] if len(pad) > 0 else 0
        top = pad[2] if len(pad) > 2 else 0
        return Effect("window", Window(kernel_eff=(1, 1), stride=(1, 1), pad_before=(top, left)))
    if op == "interpolate":
        mode = _arg(node, "mode", "nearest")
        taps = {"nearest": 1, "nearest-exact": 1, "bilinear": 2, "bicubic": 4}.get(mode)
        if taps is None or not (_is_nchw(in_shape) and _is_nchw(out_shape)):
            return Effect("unknown", reason=Message("interpolate mode {mode!r}", mode=mode))
        scale = (out_shape[2] / in_shape[2], out_shape[3] / in_shape[3])
        return Effect("resample", Resample(scale=scale, taps=(taps, taps)))
    if op in ("scaled_dot_product_attention", "multi_head_attention_forward"):
        return Effect("global", reason=Message("attention mixes every position"))
    if op in ("linear", "matmul", "mm", "bmm", "einsum"):
        if len(in_shape) == 2 or len(out_shape) == 2:
            return Effect("global", reason=op)
        return Effect(
            "unknown", reason=Message("{op} on a {ndim}-d tensor", op=op, ndim=len(in_shape))
        )
    if op in NORMS_OVER_SPACE:
        return Effect("global", reason=Message("{op} statistics span the whole feature map", op=op))
    if op in ("view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze"):
        if len(in_shape) >= 2 and len(out_shape) >= 2 and in_shape[-2:] == out_shape[-2:]:
            return POINTWISE_EFFECT
        if len(in_shape) == 4 and in_shape[-2:] == (1, 1):
            return POINTWISE_EFFECT  # (N, C, 1, 1) -> (N, C): nothing spatial is mixed
        return Effect(
            "global",
            reason=Message(
                "{op} {before} -> {after} mixes spatial positions",
                op=op,
                before=in_shape,
                after=out_shape,
            ),
        )
    if op in ("cat", "stack"):
        ndim = len(in_shape)
        dims = _dims(node, "dim", ndim) or {0}
        if ndim == 4 and dims <= {0, 1}:
            return POINTWISE_EFFECT
        return Effect("unknown", reason=Message("{op} along dim {dims}", op=op, dims=sorted(dims)))
    if op in ("mean", "sum", "amax", "amin", "max", "min", "softmax", "log_softmax", "norm"):
        ndim = len(in_shape)
        axes = _dims(node, "dim", ndim) if ndim else None
        if ndim == 4 and axes is not None and not axes & {2, 3}:
            return POINTWISE_EFFECT
        if ndim == 2:
            return POINTWISE_EFFECT if op in ("softmax", "log_softmax") else Effect("global")
        return Effect(
            "global",
            reason=Message(
                "{op} over dims {dims}", op=op, dims=sorted(axes) if axes else Message("all")
            ),
        )
    if op in POINTWISE:
        if len(in_shape) == len(out_shape) and in_shape[-2:] == out_shape[-2:]:
            return POINTWISE_EFFECT
        if len(out_shape) < 4:
            return POINTWISE_EFFECT
        return Effect(
            "unknown",
            reason=Message(
                "{op} changed the shape {before} -> {after}",
                op=op,
                before=in_shape,
                after=out_shape,
            ),
        )
    return Effect("unknown", reason=Message("no receptive-field rule for {op!r}", op=op))
