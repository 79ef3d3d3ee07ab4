"""What the chapter itself says: its sections, its inputs, its printed outputs and why some differ.

Data only (the computations are in `cnnkit.analysis.chapter`). `CHAPTER_PRINTED` is used to
detect and report differences, never as expected values in tests.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CHAPTER_PRINTED", "EDGE_KERNEL", "IMAGE_5X5", "NOTES", "SECTIONS"]

SECTIONS: dict[str, str] = {
    "1.1": "Image recognition and the arrival of CNNs",
    "1.2": "Convolution basics",
    "1.3": "Feature maps and receptive fields",
    "1.4": "Convolution layers in PyTorch",
    "1.6": "Practice: the SimpleCNN for MNIST",
    "ex1": "Exercise 1: output size",
    "ex2": "Exercise 2: parameter count",
    "ex3": "Exercise 3: receptive field",
    "ex5": "Exercise 5: fully connected vs CNN",
}

# The chapter's *printed* outputs (and the numbers its text states), keyed by entry and item.
# Data for detecting differences only; never expected values in tests.
CHAPTER_PRINTED: dict[str, dict[str, Any]] = {
    "1.1-fc-params": {"input_features": 150_528, "weights": 150_528_000},
    "1.1-shift": {
        "original_flat": [0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1] + [0] * 12,
        "shifted_flat": [0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1] + [0] * 11,
        "distance": "2.45",
    },
    "1.1-pipeline": {"diagram_sizes": [28, 26, 13, 11, 5], "diagram_flatten": 1600},
    "1.2-conv": {"output": [[-13, -15, -12], [-8, -9, -6], [-5, -6, 0]]},
    "1.2-worked-example": {
        "region": [[1, 2, 3], [4, 5, 6], [7, 8, 9]],
        "products": [[-1, -2, -3], [-4, 40, -6], [-7, -8, -9]],
        "sum": -13,
    },
    "1.2-output-sizes": {"outputs": [26, 28, 14, 32]},
    "1.3-multichannel": {
        "output_shape": [1, 16, 28, 28],
        "weight": 432,
        "bias": 16,
        "total": 448,
    },
    "1.3-receptive-field": {"sizes": [3, 5, 6, 8, 10, 11], "final": 11},
    "1.3-rf-diagram": {"sizes": [3, 5, 7]},
    "1.4-conv2d": {
        "output_shape": [8, 64, 224, 224],
        "weight_shape": [64, 3, 3, 3],
        "bias_shape": [64],
        "total": 1792,
    },
    "1.4-param-table": {"totals": [896, 18_496, 73_856, 295_168, 9_472, 2_359_808]},
    "1.4-fc-vs-conv": {"fc": 150_529_000, "conv": 1792, "reduction": "100.00%"},
    "1.6-simple-cnn": {
        "fc1_in_features": 3136,
        "per_tensor": [288, 32, 18_432, 64, 401_408, 128, 1_280, 10],
        "total": 421_066,
    },
    "ex1": {"output": [32, 32, 128]},
    "ex2": {"per_layer": [9_472, 73_856, 295_168], "total": 378_496},
    "ex3": {"sizes": [3, 5, 7, 9], "final": 9},
    "ex5": {
        "fc": 150_529_000,
        "per_layer": [1_792, 36_928, 36_928],
        "total": 75_648,
        "reduction": "99.95%",
    },  # fmt: skip
}

# Why a printed value differs, keyed by (entry, item).
NOTES: dict[tuple[str, str], str] = {
    ("1.2-conv", "output"): (
        "The printed 3×3 output is not the cross-correlation of the printed image and kernel "
        "(flipping the kernel changes nothing, it is symmetric, and no padding or boundary mode "
        "of scipy.signal.correlate2d gives it either). "
        "cnnkit.ops.conv2d, scipy.signal.correlate2d and torch's F.conv2d agree on cnnkit's "
        "values; the position [0, 0] worked example below also gives 0, not -13."
    ),
    ("1.2-worked-example", "sum"): (
        "The printed products are right, but they sum to 0 "
        "(8·5 − (1+2+3+4+6+7+8+9) = 40 − 40), not -13."
    ),
    ("1.3-receptive-field", "sizes"): (
        "The chapter's formula R_l = R_{l-1} + (K_l − 1) ignores the stride of earlier layers. "
        "After the first 2×2 pool (stride 2) one step in the feature map is 2 input pixels, so "
        "each 3×3 conv adds (3 − 1)·2 = 4, and the second pool adds (2 − 1)·2 = 2: "
        "R_l = R_{l-1} + (K_l − 1)·j_{l-1}, j_l = j_{l-1}·S_l (Araujo et al., Distill 2019)."
    ),
    ("1.3-receptive-field", "final"): "See the row above: 16×16, not 11×11.",
    ("1.4-fc-vs-conv", "reduction"): (
        "A rounding artefact: 1 − 1,792 / 150,529,000 = 99.9988…%, which the chapter's "
        "f-string `:.2f` rounds up to 100.00%. The convolution does have parameters."
    ),
    ("1.6-simple-cnn", "total"): (
        "The printed per-tensor counts are right, and they sum to 421,642; the printed total "
        "421,066 (also printed as the trainable count) is not what sum(p.numel()) gives."
    ),
}


# Section 1.2's example: the 5×5 image and the 3×3 8-neighbour edge kernel.
IMAGE_5X5 = [[1, 2, 3, 0, 1], [4, 5, 6, 1, 2], [7, 8, 9, 2, 3], [1, 2, 3, 4, 5], [2, 3, 4, 5, 6]]
EDGE_KERNEL = [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]
