"""NumPy convolution and pooling, forward and backward, with PyTorch's semantics.

- `conv2d` (fast: pad once, im2col, one GEMM per group) and `conv2d_reference` (loops, the oracle);
- `conv2d_forward` returns `(output, Conv2dCache)`; `conv2d_backward(..., cache=...)` reuses it;
- `max_pool2d` / `avg_pool2d` and their `*_backward`;
- `pad2d` / `pad2d_backward` for the padding modes zeros, reflect, replicate, circular, symmetric.

See docs/conv.md.
"""

from cnnkit.ops.conv import Conv2dCache, ConvGeometry, conv2d, conv2d_backward, conv2d_forward
from cnnkit.ops.padding import PADDING_MODES, pad2d, pad2d_backward
from cnnkit.ops.pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from cnnkit.ops.reference import conv2d_reference

__all__ = [
    "PADDING_MODES",
    "Conv2dCache",
    "ConvGeometry",
    "avg_pool2d",
    "avg_pool2d_backward",
    "conv2d",
    "conv2d_backward",
    "conv2d_forward",
    "conv2d_reference",
    "max_pool2d",
    "max_pool2d_backward",
    "pad2d",
    "pad2d_backward",
]
