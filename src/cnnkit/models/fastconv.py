"""A first-layer convolution with a faster training path: im2col + one GEMM (CPU).

`Conv2d` is an `nn.Conv2d` (same parameters, same function, same name); it takes the fast
path only while training on an input that needs no gradient, the case of a network's first
layer. `tests/test_models.py` checks both paths against `torch.nn.functional.conv2d`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Conv2d"]


class _Im2colConv2d(torch.autograd.Function):
    """Stride-1 convolution as im2col + one GEMM, for an input that needs no gradient.

    With a column of ones appended to the patches and the bias appended to the weights,
        out (N·H_out·W_out, C_out) = cols (N·H_out·W_out, C_in·kh·kw + 1) @ w_aug ᵀ,
    and in backward one more GEMM gives both gradients: colsᵀ @ grad_out = [grad_wᵀ; grad_b].
    The output is channels-last (its memory is (N, H_out, W_out, C_out)).
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        padding: tuple[int, int],
    ) -> torch.Tensor:
        c_out, c_in, kh, kw = weight.shape
        n, _, h, w = x.shape
        ph, pw = padding
        h_out, w_out = h + 2 * ph - kh + 1, w + 2 * pw - kw + 1
        k = c_in * kh * kw
        xp = F.pad(x, (pw, pw, ph, ph))  # (N, C_in, H + 2·ph, W + 2·pw)
        cols = x.new_empty(n, h_out, w_out, k + (bias is not None))
        patches = cols[..., :k].unflatten(-1, (c_in, kh * kw))  # (N, H_out, W_out, C_in, kh·kw)
        for i in range(kh):
            for j in range(kw):
                patches[..., i * kw + j] = xp[:, :, i : i + h_out, j : j + w_out].permute(
                    0, 2, 3, 1
                )
        w_aug = weight.reshape(c_out, k)  # (C_out, C_in·kh·kw), the patch order (c, i, j)
        if bias is not None:
            cols[..., k] = 1.0
            w_aug = torch.cat([w_aug, bias[:, None]], dim=1)  # (C_out, k + 1)
        cols = cols.view(n * h_out * w_out, -1)
        out = cols @ w_aug.t()  # (N·H_out·W_out, C_out)
        ctx.save_for_backward(cols)
        ctx.weight_shape, ctx.k = weight.shape, k
        return out.view(n, h_out, w_out, c_out).permute(0, 3, 1, 2)  # (N, C_out, H_out, W_out)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        (cols,) = ctx.saved_tensors
        g = grad.permute(0, 2, 3, 1).reshape(-1, ctx.weight_shape[0])  # (N·H·W, C_out)
        # colsᵀ @ g rather than gᵀ @ cols: the operand order that is fast in MKL (5-15× here)
        both = cols.t() @ g  # (k [+ 1], C_out)
        grad_weight = both[: ctx.k].t().reshape(ctx.weight_shape)  # (C_out, C_in, kh, kw)
        grad_bias = both[ctx.k] if both.shape[0] > ctx.k else None
        return None, grad_weight, grad_bias, None


class Conv2d(nn.Conv2d):
    """`nn.Conv2d` (same parameters, same function, same name, as torch's own `qat.Conv2d`
    and friends do) with a faster training path for a network's first layer.

    While training on an input that needs no gradient, a stride-1 convolution runs as
    im2col + GEMM (`_Im2colConv2d`): with few input channels (MNIST's one) oneDNN's kernels
    are about 10× slower on CPU, the weight gradient worst of all. In eval mode, or for any
    other configuration, it is plain `nn.Conv2d`, so tools that trace or hook the model see
    the usual `conv2d`, and summaries and `print(model)` read as the chapter's.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if (
            self.training
            and input.dim() == 4  # batched (N, C, H, W); nn.Conv2d also takes (C, H, W)
            and not input.requires_grad
            and self.stride == (1, 1)
            and self.dilation == (1, 1)
            and self.groups == 1
            and self.padding_mode == "zeros"
            and not isinstance(self.padding, str)
        ):
            padding = (int(self.padding[0]), int(self.padding[1]))
            return _Im2colConv2d.apply(input, self.weight, self.bias, padding)
        return super().forward(input)
