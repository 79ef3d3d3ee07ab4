"""The training report: pictures of a finished run and one self-contained `report.html`.

`build_report` is called by the training loop at the end of a run. It evaluates the model on
the test set once, then writes into the run directory (each file atomically):

- `curves.png`: loss and accuracy per epoch, train vs test;
- `confusion.png`: the test confusion matrix (counts);
- `misclassified.png`: misclassified test images with predicted and true labels;
- `filters.png`: the first conv layer's filters at initialisation and after training;
- `feature_maps_<i>.png`: for a few test images, the maps of the first two conv layers
  after ReLU;
- `report.html`: a summary table, per-class precision/recall/F1, the history and every picture
  embedded as base64 (the page needs nothing else to open).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnkit.analysis.evaluate import Metrics, classification_metrics, model_logits
from cnnkit.analysis.feature_maps import conv_feature_maps
from cnnkit.core.errors import CnnkitError
from cnnkit.core.files import atomic_write_text
from cnnkit.data.transforms import normalize_images
from cnnkit.nn.functional import cross_entropy, log_softmax
from cnnkit.render.feature_maps import feature_maps_figure
from cnnkit.render.figures import SIGNED_CMAP, new_figure, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds")
MAX_MISCLASSIFIED = 40  # shown in the grid (the first ones in test-set order)
FEATURE_MAP_IMAGES = 3  # test images whose feature maps are drawn


def curves_figure(history: Sequence[dict[str, Any]]) -> Figure:
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    fig = new_figure(figsize=(10, 3.8))
    loss_ax, acc_ax = fig.subplots(1, 2)
    for ax, key, label in ((loss_ax, "loss", "cross-entropy loss"), (acc_ax, "acc", "accuracy")):
        for split, style in (("train", "o-"), ("test", "s--")):
            values = [row[f"{split}_{key}"] for row in history]
            ax.plot(epochs, values, style, label=split, linewidth=2, markersize=6)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(label.capitalize() + " per epoch")
        if len(epochs) <= 12:
            ax.set_xticks(epochs)
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    acc_ax.yaxis.set_major_formatter(lambda v, _: f"{v:.1%}" if v <= 1 else f"{v:.1f}")
    return fig


def confusion_figure(confusion: list[list[int]], class_names: list[str]) -> Figure:
    counts = np.asarray(confusion)
    k = len(class_names)
    size = max(5.0, 0.55 * k + 2)
    fig = new_figure(figsize=(size + 1, size))
    ax = fig.subplots()
    # log-like colour scale so that small off-diagonal counts are visible next to the diagonal
    image = ax.imshow(np.log1p(counts), cmap="Blues")
    threshold = np.log1p(counts.max()) / 2
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                fontsize=8 if counts.max() >= 1000 else 9,
                color="white" if np.log1p(counts[i, j]) > threshold else "black",
            )
    ax.set_xticks(range(k), class_names, rotation=45 if max(map(len, class_names)) > 2 else 0)
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Confusion matrix (test set, {counts.sum()} images)")
    colorbar = fig.colorbar(image, ax=ax, shrink=0.8)
    colorbar.set_label("count (log scale)")
    ticks = [t for t in (0, 1, 10, 100, 1000, 10000) if t < counts.max()] + [int(counts.max())]
    colorbar.set_ticks(np.log1p(ticks).tolist(), labels=[str(t) for t in ticks])
    return fig


def misclassified_figure(
    images: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    confidence: np.ndarray,
    class_names: list[str],
) -> Figure:
    wrong = np.flatnonzero(predictions != labels)
    shown = wrong[:MAX_MISCLASSIFIED]
    columns = 10
    rows = max(1, -(-len(shown) // columns))
    fig = new_figure(figsize=(columns * 1.25, rows * 1.55 + 0.6))
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, shown, strict=False):
        ax.imshow(images[i], cmap="gray", interpolation="nearest")
        ax.set_title(
            f"pred {class_names[predictions[i]]} ({confidence[i]:.0%})\n"
            f"true {class_names[labels[i]]}",
            fontsize=8,
            color="firebrick",
        )
    if len(shown) == 0:
        axes[0].text(0.5, 0.5, "no misclassified test images", ha="center", va="center")
    fig.suptitle(
        f"Misclassified test images: {len(wrong)} of {len(labels)}"
        + (f" (first {len(shown)} shown)" if len(wrong) > len(shown) else ""),
        fontsize=11,
    )
    return fig


def _filter_mosaic(weight: np.ndarray, columns: int, gap: int = 1) -> np.ndarray:
    """(C_out, C_in, kh, kw) -> one mosaic; single-channel filters keep their signed values,
    3-channel filters become RGB scaled to [0, 1] per filter; other C_in show channel 0."""
    c_out, c_in, kh, kw = weight.shape
    rgb = c_in == 3
    rows = -(-c_out // columns)
    shape = (rows * (kh + gap) - gap, columns * (kw + gap) - gap) + ((3,) if rgb else ())
    mosaic = np.full(shape, np.nan if not rgb else 1.0)
    for k in range(c_out):
        r, q = divmod(k, columns)
        if rgb:
            f = weight[k].transpose(1, 2, 0)  # (kh, kw, 3)
            span = f.max() - f.min()
            tile = (f - f.min()) / (span if span > 0 else 1.0)
        else:
            tile = weight[k, 0]
        mosaic[r * (kh + gap) : r * (kh + gap) + kh, q * (kw + gap) : q * (kw + gap) + kw] = tile
    return mosaic


def filters_figure(initial: np.ndarray, trained: np.ndarray, layer_name: str) -> Figure:
    c_out, c_in, kh, kw = trained.shape
    columns = min(8, c_out)
    fig = new_figure(figsize=(11, 0.9 + 4.6 * (-(-c_out // columns)) / columns))
    axes = fig.subplots(1, 2)
    # one symmetric colour scale for both panels, so the change in magnitude is visible
    limit = float(max(np.abs(initial).max(), np.abs(trained).max())) or 1.0
    for ax, weight, title in (
        (axes[0], initial, "at initialisation"),
        (axes[1], trained, "trained"),
    ):
        mosaic = _filter_mosaic(weight, columns)
        if c_in == 3:
            ax.imshow(mosaic, interpolation="nearest")
        else:
            image = ax.imshow(
                mosaic, cmap=SIGNED_CMAP, vmin=-limit, vmax=limit, interpolation="nearest"
            )
        ax.set_title(f"{layer_name} {title}")
        ax.set_xticks([])
        ax.set_yticks([])
    if c_in != 3:
        fig.colorbar(image, ax=list(axes), shrink=0.8, label="weight")
    fig.suptitle(
        f"{layer_name}: {c_out} filters of {kh}x{kw}"
        + (f" (input channel 0 of {c_in})" if c_in not in (1, 3) else ""),
        fontsize=11,
    )
    return fig


def _first_conv(model) -> tuple[str, Any]:
    from torch import nn

    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise CnnkitError(f"the model {type(model).__name__} has no nn.Conv2d layer")


def _png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _history_table(history: Sequence[dict[str, Any]]) -> str:
    head = "".join(f"<th>{k}</th>" for k in HISTORY_KEYS)
    rows = []
    for row in history:
        cells = [
            f"{row['epoch']}",
            f"{row['train_loss']:.4f}",
            f"{row['train_acc']:.2%}",
            f"{row['test_loss']:.4f}",
            f"{row['test_acc']:.2%}",
            f"{row['seconds']:.1f}",
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _per_class_table(metrics: Metrics) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(m.name)}</td><td>{m.precision:.2%}</td><td>{m.recall:.2%}</td>"
        f"<td>{m.f1:.2%}</td><td>{m.support}</td></tr>"
        for m in metrics.per_class
    )
    return (
        "<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th>"
        f"<th>support</th></tr>{rows}</table>"
    )


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.7em; text-align: right; }
th { background: #f2f2f2; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.3em 0 1.2em; }
figcaption { color: #555; font-size: 0.9em; }
"""


def _html(
    run_dir: Path,
    history: Sequence[dict[str, Any]],
    metrics: Metrics,
    test_loss: float,
    pictures: list[tuple[str, Path]],
) -> str:
    last = history[-1] if history else None
    summary = [
        ("run", html.escape(run_dir.name)),
        ("epochs", str(len(history))),
        ("final test accuracy", f"{metrics.accuracy:.2%}"),
        ("final test loss", f"{test_loss:.4f}"),
        ("macro F1", f"{metrics.macro_f1:.2%}"),
    ]
    if last is not None:
        summary.append(("final train accuracy", f"{last['train_acc']:.2%}"))
        summary.append(("training time", f"{sum(r['seconds'] for r in history):.1f} s"))
    summary_rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in summary)
    figures = "".join(
        f'<figure><img src="{_png_data_uri(path)}" alt="{html.escape(path.name)}">'
        f"<figcaption>{html.escape(caption)} ({html.escape(path.name)})</figcaption></figure>"
        for caption, path in pictures
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>cnnkit report: {html.escape(run_dir.name)}</title><style>{_CSS}</style></head>
<body>
<h1>Training report: {html.escape(run_dir.name)}</h1>
<h2>Summary</h2><table>{summary_rows}</table>
<h2>History</h2>{_history_table(history)}
<h2>Per class (test set)</h2>{_per_class_table(metrics)}
<h2>Pictures</h2>{figures}
</body></html>
"""


def build_report(
    run_dir: Path,
    *,
    model,
    initial_conv1_weight: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    normalize: tuple[float, float],
    history: list[dict],
    class_names: list[str],
) -> Path:
    """Write the run's pictures and `report.html` into `run_dir`; return the HTML's path.

    `test_images` are the raw dataset images, uint8 (N, H, W) or (N, H, W, 3) as
    `cnnkit.data.load_dataset` returns them; `normalize` is (mean, std) on the [0, 1] scale.
    `history` rows have the keys of HISTORY_KEYS. The model's train/eval mode is restored.
    """
    run_dir = Path(run_dir)
    images = np.asarray(test_images)
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise CnnkitError(
            "build_report expects raw test images, uint8 (N, H, W) or (N, H, W, C); got "
            f"{images.dtype} {images.shape}"
        )
    labels = np.asarray(test_labels, dtype=np.int64)
    for row in history:
        missing = [k for k in HISTORY_KEYS if k not in row]
        if missing:
            raise CnnkitError(f"history row {row} lacks {missing}")

    x = normalize_images(images, normalize)  # (N, C, H, W)
    logits = model_logits(model, x)
    confidence = np.exp(log_softmax(logits, axis=1)).max(axis=1)  # the top class's probability
    predictions = logits.argmax(axis=1)
    metrics = classification_metrics(labels, predictions, list(class_names))

    conv_name, conv = _first_conv(model)
    trained = conv.weight.detach().float().numpy()
    initial = np.asarray(initial_conv1_weight, dtype=np.float32)
    if initial.shape != trained.shape:
        raise CnnkitError(
            f"initial_conv1_weight has shape {initial.shape}, {conv_name}.weight {trained.shape}"
        )

    pictures: list[tuple[str, Path]] = []

    def save(fig: Figure, name: str, caption: str) -> None:
        pictures.append((caption, save_figure(fig, run_dir / name)))

    if history:
        save(
            curves_figure(history),
            "curves.png",
            "Loss and accuracy per epoch (train: mean over the epoch's batches, while learning; "
            "test: after the epoch)",
        )
    save(
        confusion_figure(metrics.confusion, list(class_names)),
        "confusion.png",
        "Confusion matrix of the test set (rows: true class, columns: predicted)",
    )
    save(
        misclassified_figure(images, labels, predictions, confidence, list(class_names)),
        "misclassified.png",
        "Misclassified test images, with the predicted class, its probability and the truth",
    )
    save(
        filters_figure(initial, trained, conv_name),
        "filters.png",
        f"{conv_name} filters at initialisation (left) and after training (right)",
    )
    picks = list(range(min(FEATURE_MAP_IMAGES, len(images))))
    for i, layers in zip(picks, conv_feature_maps(model, x[picks], limit=2), strict=True):
        truth, guess = class_names[labels[i]], class_names[predictions[i]]
        save(
            feature_maps_figure(
                images[i],
                layers,
                title=f"test image {i}: true {truth}, predicted {guess}",
            ),
            f"feature_maps_{i}.png",
            f"Feature maps after ReLU of test image {i} (each map scaled to its own maximum)",
        )

    target = run_dir / "report.html"
    test_loss = cross_entropy(logits.astype(np.float64), labels)
    atomic_write_text(target, _html(run_dir, history, metrics, test_loss, pictures))
    return target
