"""Multiply-accumulates (MACs) of one executed op; FLOPs = 2 × MACs.

One MAC = one multiply followed by one add. `out` = elements of the op's output, `in` =
elements of its first input. Every op has a rule here or is *not counted*: `has_rule(op)` is
False, and `summary` names it (with how many times it ran) and marks its total a lower bound.

| op                                        | MACs                                                |
|-------------------------------------------|-----------------------------------------------------|
| conv2d (any groups, dilation)             | out · (C_in / groups) · K_h · K_w       (bias: 0)   |
| conv_transpose2d                          | in · (C_out / groups) · K_h · K_w       (bias: 0)   |
| linear, matmul, mm, bmm, addmm, baddbmm   | out · K (K: the contracted size), any rank          |
| einsum                                    | per pairwise contraction (left to right): the       |
|                                           | product of the sizes of every index of both operands|
| scaled_dot_product_attention              | B · L · S · (E + E_v): QKᵀ and attention × V        |
| multi_head_attention_forward              | projections N·(L·E + S·k_dim + S·v_dim)·E, QKᵀ and  |
| (nn.MultiheadAttention)                   | attention × V 2 · N·L·S·E, output N·L·E·E           |
| batch_norm (eval)                         | in: one fused multiply-add per element              |
| layer/group/instance norm                 | 2 · in: statistics pass, then a fused normalise-and-|
|                                           | scale per element                                   |
| max/avg pooling                           | out · K_h · K_w: one op per window element          |
| adaptive avg/max pooling, reductions      | in: every input element is read once                |
| softmax, log_softmax                      | out: one exponential per element                    |
| element-wise arithmetic, activations      | out: one op per output element                      |
| interpolate                               | nearest 0; (bi/tri)linear 2/4/8 · out; bicubic 16 · |
|                                           | out; area: in                                       |
| embedding, views, cat, dropout (eval)...  | 0                                                   |

Softmax and scaling inside attention are not counted, as in `torch.utils.flop_counter`.
"""

from __future__ import annotations

import math
from typing import Any

from cnnkit.analysis.summary.rules import POINTWISE, ZERO_COST, arg, as_pair
from cnnkit.analysis.summary.trace import Node

__all__ = ["has_rule", "macs"]

REDUCTIONS = frozenset("mean sum amax amin max min norm var std prod logsumexp argmax".split())
NORMS = frozenset("layer_norm group_norm instance_norm local_response_norm rms_norm".split())
MATMULS = frozenset("linear matmul mm bmm addmm baddbmm addbmm addmv mv dot".split())


def _numel(shape: Any) -> int:
    return math.prod(int(v) for v in shape)


def _first_tensor_shape(node: Node) -> tuple[int, ...]:
    return node.input_shapes[0] if node.input_shapes else ()


def _matmul(node: Node) -> int:
    """out · K, K being the size summed over (the last axis of the left operand)."""
    out = _numel(node.shape)
    if node.op == "linear":
        weight = node.args[1] if len(node.args) > 1 else node.kwargs["weight"]
        return out * int(weight.shape[-1])
    # addmm(input, mat1, mat2), baddbmm(input, b1, b2), addmv(input, mat, vec): skip `input`
    left = node.args[1] if node.op.startswith("add") or node.op == "baddbmm" else node.args[0]
    return out * (int(left.shape[-1]) if left.dim() > 0 else 1)


def _einsum_letters(spec: str, ndim: int) -> list[str]:
    """Index letters of one operand; `...` becomes `0`, `1`, ... aligned from the right."""
    if "..." not in spec:
        return list(spec)
    before, after = spec.split("...")
    n = ndim - len(before) - len(after)
    return [*before, *(str(9 - i) for i in reversed(range(n))), *after]


def _einsum(node: Node) -> int:
    equation = str(node.args[0]).replace(" ", "")
    operands = list(node.args[1:])
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = list(operands[0])
    lhs, _, rhs = equation.partition("->")
    specs = [_einsum_letters(s, t.dim()) for s, t in zip(lhs.split(","), operands, strict=True)]
    sizes: dict[str, int] = {}
    for spec, t in zip(specs, operands, strict=True):
        for letter, n in zip(spec, t.shape, strict=True):
            sizes[letter] = max(sizes.get(letter, 1), int(n))
    if not rhs and "->" not in equation:  # implicit output: indices that appear once
        flat = [c for s in specs for c in s]
        keep = {c for c in flat if flat.count(c) == 1 or c.isdigit()}
    else:
        keep = set(_einsum_letters(rhs, len(node.shape)))
    if len(specs) == 1:
        return _numel(sizes[c] for c in set(specs[0]))
    total, current = 0, set(specs[0])
    for i, spec in enumerate(specs[1:], start=1):
        union = current | set(spec)
        total += _numel(sizes[c] for c in union)
        later = {c for s in specs[i + 1 :] for c in s}
        current = {c for c in union if c in keep or c in later}
    return total


def _sdpa(node: Node) -> int:
    q, k, v = node.args[0], node.args[1], node.args[2]
    batch = _numel(node.shape[:-2])  # broadcast of the leading axes of q, k, v
    length, source = int(q.shape[-2]), int(k.shape[-2])
    return batch * length * source * (int(q.shape[-1]) + int(v.shape[-1]))


def _mha(node: Node) -> int:
    """F.multi_head_attention_forward(query, key, value, embed_dim, num_heads, ...)."""
    q, k, v = node.args[0], node.args[1], node.args[2]
    batched = q.dim() == 3  # (L, N, E), else unbatched (L, E)
    n = int(q.shape[1]) if batched else 1
    length, source, e = int(q.shape[0]), int(k.shape[0]), int(q.shape[-1])
    k_dim, v_dim = int(k.shape[-1]), int(v.shape[-1])
    if arg(node, "bias_k", 7) is not None:
        source += 1
    if arg(node, "add_zero_attn", 9):
        source += 1
    projections = n * (length * e + source * k_dim + source * v_dim) * e
    if arg(node, "static_k", 21) is not None or arg(node, "static_v", 22) is not None:
        projections = n * length * e * e + n * source * e * e  # conservative: as self-attention
    attention = 2 * n * length * source * e  # QKᵀ and attention × V over all heads
    return projections + attention + n * length * e * e  # + output projection


def _interpolate(node: Node) -> int:
    mode = arg(node, "mode", 3, "nearest")
    if mode == "area":
        return _numel(_first_tensor_shape(node))
    taps = {"linear": 2, "bilinear": 4, "trilinear": 8, "bicubic": 16}.get(mode, 0)
    return taps * _numel(node.shape)


def _pool(node: Node) -> int:
    kh, kw = as_pair(arg(node, "kernel_size", 2 if node.op == "lp_pool2d" else 1), 1)
    return _numel(node.shape) * kh * kw


def _conv(node: Node) -> int:
    weight = arg(node, "weight", 1)
    if node.op == "conv2d":  # weight (C_out, C_in/groups, K_h, K_w)
        return _numel(node.shape) * _numel(weight.shape[1:])
    # conv_transpose2d: weight (C_in, C_out/groups, K_h, K_w)
    return _numel(_first_tensor_shape(node)) * _numel(weight.shape[1:])


_RULES = {
    "conv2d": _conv,
    "conv_transpose2d": _conv,
    "einsum": _einsum,
    "scaled_dot_product_attention": _sdpa,
    "multi_head_attention_forward": _mha,
    "interpolate": _interpolate,
    "max_pool2d": _pool,
    "avg_pool2d": _pool,
    "lp_pool2d": _pool,
    "batch_norm": lambda n: _numel(_first_tensor_shape(n)),
    "adaptive_avg_pool2d": lambda n: _numel(_first_tensor_shape(n)),
    "adaptive_max_pool2d": lambda n: _numel(_first_tensor_shape(n)),
    "softmax": lambda n: _numel(n.shape),
    "log_softmax": lambda n: _numel(n.shape),
    "embedding": lambda n: 0,
}


def has_rule(op: str) -> bool:
    """Whether `macs` knows `op` (else it counts 0 and the op is listed as not counted)."""
    return (
        op in _RULES
        or op in MATMULS
        or op in NORMS
        or op in REDUCTIONS
        or op in ZERO_COST
        or (op in POINTWISE)
    )


def macs(node: Node) -> int:
    """MACs of one executed op by the rules in the module docstring (0 without a rule)."""
    op = node.op
    rule = _RULES.get(op)
    if rule is not None:
        return int(rule(node))
    if op in MATMULS:
        return _matmul(node)
    if op in NORMS:
        return 2 * _numel(_first_tensor_shape(node))
    if op in REDUCTIONS:
        return _numel(_first_tensor_shape(node))
    if op in ZERO_COST or op not in POINTWISE:
        return 0
    return _numel(node.shape)
