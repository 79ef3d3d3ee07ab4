"""Stateless NumPy functions of the training engine: linear, dropout, softmax cross-entropy.

Each forward has its backward beside it. Shapes use torch's letters: N batch, F_in/F_out
features, K classes. Nothing here allocates more than the result it returns.
"""

from __future__ import annotations

import numpy as np

from cnnkit.core.errors import CnnkitError, ShapeError

__all__ = [
    "check_dropout_p",
    "cross_entropy",
    "dropout",
    "dropout_mask",
    "linear",
    "linear_backward",
    "log_softmax",
    "softmax_cross_entropy",
]


def _check_linear(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> None:
    if weight.ndim != 2:
        raise ShapeError.from_template(
            "linear expects a 2-D weight (F_out, F_in). Got shape {shape}.", shape=weight.shape
        )
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        rows = int(np.prod(input.shape[:-1])) if input.ndim else 1
        cols = input.shape[-1] if input.ndim else 1
        raise ShapeError.from_template(
            (
                "linear: input and weight shapes cannot be multiplied ({rows}x{cols} and "
                "{shape}x{shape2}): input {shape3} has {cols} features, the weight "
                "expects in_features={shape}."
            ),
            rows=rows,
            cols=cols,
            shape=weight.shape[1],
            shape2=weight.shape[0],
            shape3=tuple(input.shape),
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ShapeError.from_template(
            "linear: bias shape {shape} does not match out_features={shape2}.",
            shape=tuple(bias.shape),
            shape2=weight.shape[0],
        )


def linear(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """y = x Wᵀ + b as `torch.nn.functional.linear`: x (*, F_in), W (F_out, F_in) -> (*, F_out)."""
    _check_linear(input, weight, bias)
    out = input @ weight.T  # (*, F_out)
    if bias is not None:
        out += bias
    return out


def linear_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    *,
    has_bias: bool = True,
    needs_input_grad: bool = True,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of `linear` w.r.t. (input, weight, bias) given dL/dy of shape (*, F_out)."""
    g2 = grad_output.reshape(-1, grad_output.shape[-1])  # (N*, F_out)
    x2 = input.reshape(-1, input.shape[-1])  # (N*, F_in)
    grad_weight = g2.T @ x2  # (F_out, F_in)
    grad_bias = g2.sum(axis=0) if has_bias else None  # (F_out,)
    grad_input = grad_output @ weight if needs_input_grad else None  # (*, F_in)
    return grad_input, grad_weight, grad_bias


def check_dropout_p(p: float) -> float:
    """Torch's rule: 0 <= p <= 1 (p = 1 zeroes everything)."""
    if isinstance(p, bool) or not isinstance(p, int | float | np.floating) or not 0 <= p <= 1:
        raise CnnkitError.from_template(
            "dropout probability has to be between 0 and 1, but got {p!r}", p=p
        )
    return float(p)


def dropout_mask(
    shape: tuple[int, ...], p: float, rng: np.random.Generator, dtype: np.dtype | type = np.float32
) -> np.ndarray:
    """A mask with entries 0 (probability p) or 1/(1-p), torch's inverted-dropout scaling."""
    p = check_dropout_p(p)
    if p == 1:
        return np.zeros(shape, dtype=dtype)
    keep = rng.random(shape, dtype=np.float32) >= p
    return keep * np.asarray(1.0 / (1.0 - p), dtype=dtype)


def dropout(
    input: np.ndarray,
    p: float = 0.5,
    training: bool = True,
    *,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(output, mask): in training, input * mask; in eval (or p = 0) the input itself, mask None.

    The backward of dropout is `grad_output * mask`.
    """
    p = check_dropout_p(p)
    if not training or p == 0:
        return input, None
    if rng is None:
        raise CnnkitError("dropout in training mode needs a NumPy Generator `rng`.")
    mask = dropout_mask(input.shape, p, rng, input.dtype)
    return input * mask, mask


def _check_targets(logits: np.ndarray, target: np.ndarray) -> None:
    if logits.ndim != 2:
        raise ShapeError.from_template(
            "cross_entropy expects logits of shape (N, K). Got shape {shape}.",
            shape=tuple(logits.shape),
        )
    if target.ndim != 1 or not np.issubdtype(target.dtype, np.integer):
        raise ShapeError.from_template(
            (
                "cross_entropy expects integer class indices of shape (N,). Got dtype "
                "{dtype} and shape {shape}."
            ),
            dtype=target.dtype,
            shape=tuple(target.shape),
        )
    if target.shape[0] != logits.shape[0]:
        raise ShapeError.from_template(
            ("Expected input batch_size ({shape}) to match target batch_size ({shape2})."),
            shape=logits.shape[0],
            shape2=target.shape[0],
        )
    if target.size and (target.min() < 0 or target.max() >= logits.shape[1]):
        bad = target[(target < 0) | (target >= logits.shape[1])][0]
        raise CnnkitError.from_template(
            "Target {bad} is out of bounds for {shape} classes.", bad=bad, shape=logits.shape[1]
        )


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(softmax(x)) through the log-sum-exp trick: never overflows, never takes log(0)."""
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def cross_entropy(logits: np.ndarray, target: np.ndarray) -> float:
    """Mean softmax cross-entropy, `torch.nn.functional.cross_entropy(logits, target)`."""
    loss, _ = softmax_cross_entropy(logits, target, need_grad=False)
    return loss


def softmax_cross_entropy(
    logits: np.ndarray, target: np.ndarray, *, need_grad: bool = True
) -> tuple[float, np.ndarray | None]:
    """(mean loss, dL/dlogits) for logits (N, K) and class indices (N,).

    dL/dlogits = (softmax(logits) - onehot(target)) / N, in the logits' dtype.
    """
    _check_targets(logits, target)
    n = logits.shape[0]
    rows = np.arange(n)
    logp = log_softmax(logits, axis=1)  # (N, K)
    loss = float(-logp[rows, target].sum(dtype=np.float64) / n) if n else float("nan")
    if not need_grad:
        return loss, None
    grad = np.exp(logp, out=logp)  # softmax, reusing the buffer: (N, K)
    grad[rows, target] -= 1
    grad /= max(n, 1)
    return loss, grad
