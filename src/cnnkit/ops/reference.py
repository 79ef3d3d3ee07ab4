"""The readable loop version of `conv2d`: the in-repo oracle for the fast im2col engine.

It is the chapter's `manual_convolution` generalised to batches, channels, groups, stride,
padding, dilation and bias: for every output pixel, cut the input region under the kernel and
sum the element-wise product. It shares `conv2d`'s argument checks and padding, nothing else.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnkit.calc.arithmetic import effective_kernel_hw
from cnnkit.ops.conv import prepare_conv
from cnnkit.ops.padding import pad2d

__all__ = ["conv2d_reference"]


def conv2d_reference(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Same arguments and result as `cnnkit.ops.conv2d`, computed with loops (slow)."""
    x, w, b, geo = prepare_conv(
        input, weight, bias, stride, padding, dilation, groups, padding_mode
    )
    x = pad2d(x, geo.pads, geo.padding_mode)  # (N, C_in, H_pad, W_pad)
    n, c_out, out_h, out_w = geo.output_shape
    _, c_in_per_group, ker_h, ker_w = geo.weight_shape
    c_out_per_group = c_out // geo.groups
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    span_h, span_w = effective_kernel_hw((ker_h, ker_w), (dh, dw))  # kernel extent, dilated

    output = np.zeros(geo.output_shape, dtype=geo.dtype)
    for image in range(n):
        for channel in range(c_out):
            group = channel // c_out_per_group
            first = group * c_in_per_group
            channels = x[image, first : first + c_in_per_group]  # (C_in/G, H_pad, W_pad)
            kernel = w[channel]  # (C_in/G, K_h, K_w)
            for i in range(out_h):
                for j in range(out_w):
                    # the input region under the kernel at output position (i, j)
                    top, left = i * sh, j * sw
                    region = channels[:, top : top + span_h : dh, left : left + span_w : dw]
                    output[image, channel, i, j] = np.sum(region * kernel)
            if b is not None:
                output[image, channel] += b[channel]
    return geo.restore(output)
