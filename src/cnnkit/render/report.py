"""The training report: a `RunReport` (cnnkit.analysis.report) drawn and written as files.

`build_report` is what the CLI calls at the end of a run: `analyse_run` (which runs the model)
then `render_report`, which writes into the run directory (each file atomically):

- `curves.png`: loss and accuracy per epoch, train vs test (one labelled point per curve
  for a single-epoch run);
- `confusion.png`: the test confusion matrix (counts);
- `misclassified.png`: misclassified test images with predicted and true labels;
- `filters.png`: the first conv layer's filters at initialisation and after training;
- `feature_maps_<i>.png`: for a few test images, the maps of the first two conv layers
  after ReLU;
- `report.html`: the run's data and settings, a summary table, per-class precision/recall/F1,
  the history and every picture embedded as base64 (the page needs nothing else to open). A
  diverged run is flagged at the top, and a single-epoch run says so.

The page is in the current language (`cnnkit.core.i18n`): in English its tables are headed by
the files' own keys; in another language by their words (HISTORY_WORDS, SETTING_WORDS) with the
key as code. (A little over 500 lines: the figures and the page they go into belong together.)
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnkit.analysis.report import HISTORY_KEYS, RunReport, analyse_run
from cnnkit.core.files import atomic_write_text
from cnnkit.core.i18n import N_, Message, get_language, gettext, translate
from cnnkit.render.feature_maps import feature_maps_figure
from cnnkit.render.figures import SIGNED_CMAP, new_figure, save_figure
from cnnkit.render.fonts import figure_text as _

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "build_report",
    "confusion_figure",
    "curves_figure",
    "filters_figure",
    "misclassified_figure",
    "render_report",
]

MAX_MISCLASSIFIED = 40  # shown in the grid (the first ones in test-set order)


def curves_figure(history: Sequence[dict[str, Any]]) -> Figure:
    """Loss and accuracy per epoch, train vs test; a single epoch shows as labelled points."""
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    fig = new_figure(figsize=(10, 3.8))
    loss_ax, acc_ax = fig.subplots(1, 2)
    single = len(epochs) == 1  # one point per curve: big markers, and their values written
    panels = (
        (loss_ax, "loss", _("cross-entropy loss"), _("Cross-entropy loss")),
        (acc_ax, "acc", _("accuracy"), _("Accuracy")),
    )
    splits = (("train", "o-", _("train")), ("test", "s--", _("test")))
    for ax, key, label, title in panels:
        for split, style, split_label in splits:
            values = [row[f"{split}_{key}"] for row in history]
            ax.plot(epochs, values, style, label=split_label, linewidth=2,
                    markersize=12 if single else 6)  # fmt: skip
            if single:
                text = f"{values[0]:.2%}" if key == "acc" else f"{values[0]:.4f}"
                ax.annotate(f"{split_label} {text}", (epochs[0], values[0]), xytext=(10, 0),
                            textcoords="offset points", va="center")  # fmt: skip
        ax.set_xlabel(_("epoch"))
        ax.set_ylabel(label)
        per = _("{title} (one epoch)") if single else _("{title} per epoch")
        ax.set_title(per.format(title=title))
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
    ax.set_xlabel(_("predicted class"))
    ax.set_ylabel(_("true class"))
    ax.set_title(_("Confusion matrix (test set, {n} images)").format(n=counts.sum()))
    colorbar = fig.colorbar(image, ax=ax, shrink=0.8)
    colorbar.set_label(_("count (log scale)"))
    ticks = [t for t in (0, 1, 10, 100, 1000, 10000) if t < counts.max()] + [int(counts.max())]
    colorbar.set_ticks(np.log1p(ticks).tolist(), labels=[str(t) for t in ticks])
    return fig


def misclassified_figure(report: RunReport) -> Figure:
    images, labels, class_names = report.images, report.labels, report.class_names
    predictions, confidence = report.predictions, report.confidence
    wrong = report.misclassified
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
            _("pred {predicted} ({confidence:.0%})\ntrue {true}").format(
                predicted=class_names[predictions[i]],
                confidence=confidence[i],
                true=class_names[labels[i]],
            ),
            fontsize=8,
            color="firebrick",
        )
    if len(shown) == 0:
        axes[0].text(0.5, 0.5, _("no misclassified test images"), ha="center", va="center")
    fig.suptitle(
        _("Misclassified test images: {wrong} of {total}").format(
            wrong=len(wrong), total=len(labels)
        )
        + (_(" (first {n} shown)").format(n=len(shown)) if len(wrong) > len(shown) else ""),
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
        (axes[0], initial, _("at initialisation")),
        (axes[1], trained, _("trained")),
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
        fig.colorbar(image, ax=list(axes), shrink=0.8, label=_("weight"))
    fig.suptitle(
        _("{layer}: {n} filters of {kh}x{kw}").format(layer=layer_name, n=c_out, kh=kh, kw=kw)
        + (_(" (input channel 0 of {c})").format(c=c_in) if c_in not in (1, 3) else ""),
        fontsize=11,
    )
    return fig


def _png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _cell(value: Any, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


# What each metrics.jsonl column and config.json key is, in words. The English report heads
# its tables with the keys themselves (the files' own names); another language shows the
# words, translated, and the key after them as code.
HISTORY_WORDS = {
    "epoch": N_("epoch"),
    "train_loss": N_("training loss"),
    "train_acc": N_("training accuracy"),
    "test_loss": N_("test loss"),
    "test_acc": N_("test accuracy"),
    "seconds": N_("seconds"),
}
SETTING_WORDS = {
    "dataset": N_("dataset"),
    "train_size": N_("training images"),
    "test_size": N_("test images"),
    "limit": N_("training image limit"),
    "test_limit": N_("test image limit"),
    "data_dir": N_("data folder"),
    "model": N_("model"),
    "engine": N_("training engine"),
    "epochs": N_("epochs"),
    "batch_size": N_("batch size"),
    "lr": N_("learning rate"),
    "optimizer": N_("optimizer"),
    "loss": N_("loss function"),
    "seed": N_("random seed"),
    "threads": N_("CPU threads"),
    "test_batch_size": N_("test batch size"),
    "torch_version": N_("PyTorch version"),
    "recipe": N_("recipe"),
    "device": N_("device"),
    "precision": N_("numeric precision"),
    "image_size": N_("image size"),
    "channels": N_("input channels"),
    "test_fraction": N_("fraction held out for testing"),
    "on_bad_image": N_("unreadable images"),
    "world_size": N_("processes (world size)"),
    "image_folder": N_("image folder"),
}


def _key_label(key: str, words: dict[str, str]) -> str:
    """The head of a file key's row or column, as HTML: the key itself in English; in another
    language the key's words, translated, then the key as code (the key alone without words)."""
    english = words.get(key)
    said = gettext(english) if english is not None else key
    if english is None or said == english:
        return html.escape(key)
    return f"{html.escape(said)} <code>{html.escape(key)}</code>"


# The divergence sentences of metrics.jsonl (cnnkit.training.runs.Divergence.describe), which
# the file stores in English: read back into their templates, to be worded in the report's
# language. The names are the templates' fields; `what` is one of WHAT_WORDS.
_DIVERGED_PATTERNS = (
    (
        N_("the {what} became {value} at batch {batch} of {batches} in epoch {epoch}"),
        r"the (?P<what>.+) became (?P<value>\S+) at batch (?P<batch>\d+) of (?P<batches>\d+)"
        r" in epoch (?P<epoch>\d+)",
    ),
    (
        N_("the {what} became {value} after epoch {epoch}"),
        r"the (?P<what>.+) became (?P<value>\S+) after epoch (?P<epoch>\d+)",
    ),
)


def _what_message(what: str) -> Message:
    weights = re.fullmatch(r"weights \((?P<name>.+)\)", what)
    if weights:
        return Message(N_("weights ({name})"), name=weights["name"])
    return Message(what)  # "training loss", "test loss" (catalog entries of the loop)


def diverged_text(stored: str) -> str:
    """metrics.jsonl's `diverged` text (English) in the current language; text it does not
    recognise is shown as stored."""
    for template, pattern in _DIVERGED_PATTERNS:
        m = re.fullmatch(pattern, stored)
        if m:
            fields: dict[str, Any] = m.groupdict()
            fields["what"] = _what_message(fields["what"])
            return translate(Message(template, **fields))
    return stored


def _history_table(history: Sequence[dict[str, Any]], report: RunReport) -> str:
    head = "".join(f"<th>{_key_label(k, HISTORY_WORDS)}</th>" for k in HISTORY_KEYS)
    formats = dict(zip(HISTORY_KEYS, ("", ".4f", ".2%", ".4f", ".2%", ".1f"), strict=True))
    rows = []
    for row in history:
        cells = "".join(f"<td>{_cell(row[k], f)}</td>" for k, f in formats.items())
        rows.append(f"<tr>{cells}</tr>")
    files = report.files
    if files.diverged:
        epoch = "" if files.diverged_epoch is None else str(files.diverged_epoch)
        rows.append(
            f'<tr class="diverged"><td>{html.escape(epoch)}</td>'
            f'<td colspan="{len(HISTORY_KEYS) - 1}">{gettext("diverged:")} '
            f"{html.escape(diverged_text(files.diverged))}"
            "</td></tr>"
        )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _per_class_table(report: RunReport) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(m.name)}</td><td>{m.precision:.2%}</td><td>{m.recall:.2%}</td>"
        f"<td>{m.f1:.2%}</td><td>{m.support}</td></tr>"
        for m in report.metrics.per_class
    )
    heads = (gettext("class"), gettext("precision"), gettext("recall"), "F1", gettext("support"))
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    return f"<table><tr>{head}</tr>{rows}</table>"


# The settings shown, in this order, when config.json has them (its other keys follow).
SETTING_KEYS = (
    "dataset", "train_size", "test_size", "limit", "test_limit", "data_dir", "model",
    "engine", "epochs", "batch_size", "lr", "optimizer", "loss", "seed", "threads",
    "test_batch_size", "torch_version",
)  # fmt: skip
_NOT_SETTINGS = {"normalize", "classes", "report", "model_args"}


def _settings_rows(report: RunReport) -> list[tuple[str, str]]:
    """(name, value) rows: the test data the report measured, then the run's config.json."""
    mean, std = report.normalize
    rows = [
        (gettext("report evaluated on"), gettext("{n} test images, {k} classes").format(
            n=len(report.labels), k=len(report.class_names))),
        (gettext("normalisation"), gettext("mean {mean}, std {std} (on the [0, 1] scale)").format(
            mean=mean, std=std)),
    ]  # fmt: skip
    settings = report.files.settings
    if not settings:
        rows.append((gettext("settings"), gettext("no config.json in the run folder")))
    ordered = [k for k in SETTING_KEYS if k in settings]
    ordered += sorted(k for k in settings if k not in SETTING_KEYS and k not in _NOT_SETTINGS)
    rows += [(k, _setting_value(k, settings[k])) for k in ordered]
    return rows


def _setting_value(key: str, value: Any) -> str:
    """A config.json value as the report shows it: a setting left unset (None) in words."""
    if value is not None:
        return str(value)
    if "limit" in key:
        return gettext("all")
    if key in ("image_size", "channels"):
        return gettext("from the data")
    return gettext("not set")


def _notices(report: RunReport) -> str:
    """Banners at the top: a diverged run, a single-epoch run."""
    out = []
    if report.files.diverged:
        last = report.history[-1]["epoch"] if report.history else None
        kept = (
            gettext("the last good epoch ({epoch})").format(epoch=last)
            if last is not None
            else gettext("no completed epoch")
        )
        text = gettext(
            "<strong>This run diverged</strong> ({why}). Everything below is measured on "
            "{kept}; a smaller lr usually helps."
        ).format(why=html.escape(diverged_text(report.files.diverged)), kept=kept)
        out.append(f'<p class="notice diverged">{text}</p>')
    if report.single_epoch:
        text = gettext(
            "This run trained for a <strong>single epoch</strong>: each curve is one point, "
            "and there is no trend to read yet."
        )
        out.append(f'<p class="notice">{text}</p>')
    return "".join(out)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.7em; text-align: right; }
th { background: #f2f2f2; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.3em 0 1.2em; }
figcaption { color: #555; font-size: 0.9em; }
.notice { padding: 0.6em 1em; border-left: 4px solid #c90; background: #fff8e5; }
.notice.diverged { border-color: #b00; background: #fdecec; }
tr.diverged td { color: #b00; text-align: left; }
"""


def _html(report: RunReport, pictures: list[tuple[str, Path]]) -> str:
    history, metrics = report.history, report.metrics
    name = html.escape(report.run_name)
    diverged = gettext(" (diverged after it)") if report.files.diverged else ""
    summary = [
        (gettext("run"), name),
        (gettext("epochs"), str(len(history)) + diverged),
        (gettext("final test accuracy"), f"{metrics.accuracy:.2%}"),
        (gettext("final test loss"), f"{report.test_loss:.4f}"),
        (gettext("macro F1"), f"{metrics.macro_f1:.2%}"),
    ]
    if history:
        summary.append((gettext("final train accuracy"), f"{history[-1]['train_acc']:.2%}"))
        seconds = sum(r["seconds"] for r in history)
        summary.append((gettext("training time"), gettext("{s:.1f} s").format(s=seconds)))
    summary_rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in summary)
    settings_rows = "".join(
        f"<tr><th>{_key_label(k, SETTING_WORDS)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in _settings_rows(report)
    )
    figures = "".join(
        f'<figure><img src="{_png_data_uri(path)}" alt="{html.escape(path.name)}">'
        f"<figcaption>{html.escape(caption)} ({html.escape(path.name)})</figcaption></figure>"
        for caption, path in pictures
    )
    return f"""<!DOCTYPE html>
<html lang="{get_language()}"><head><meta charset="utf-8">
<title>{gettext("cnnkit report: {name}").format(name=name)}</title><style>{_CSS}</style></head>
<body>
<h1>{gettext("Training report: {name}").format(name=name)}</h1>
{_notices(report)}
<h2>{gettext("Summary")}</h2><table>{summary_rows}</table>
<h2>{gettext("Data and settings")}</h2><table>{settings_rows}</table>
<h2>{gettext("History")}</h2>{_history_table(history, report)}
<h2>{gettext("Per class (test set)")}</h2>{_per_class_table(report)}
<h2>{gettext("Pictures")}</h2>{figures}
</body></html>
"""


def render_report(report: RunReport, run_dir: Path) -> Path:
    """Write the pictures of `report` and `report.html` into `run_dir`; return the HTML's path."""
    run_dir = Path(run_dir)
    pictures: list[tuple[str, Path]] = []

    def save(fig: Figure, name: str, caption: str) -> None:
        pictures.append((caption, save_figure(fig, run_dir / name)))

    if report.history:
        save(
            curves_figure(report.history),
            "curves.png",
            gettext(
                "Loss and accuracy per epoch (train: mean over the epoch's batches, while "
                "learning; test: after the epoch)"
            ),
        )
    save(
        confusion_figure(report.metrics.confusion, report.class_names),
        "confusion.png",
        gettext("Confusion matrix of the test set (rows: true class, columns: predicted)"),
    )
    save(
        misclassified_figure(report),
        "misclassified.png",
        gettext(
            "Misclassified test images, with the predicted class, its probability and the truth"
        ),
    )
    conv = report.conv_name
    save(
        filters_figure(report.initial_filters, report.trained_filters, conv),
        "filters.png",
        gettext("{layer} filters at initialisation (left) and after training (right)").format(
            layer=conv
        ),
    )
    names = report.class_names
    for i, layers in report.feature_maps:
        truth, guess = names[report.labels[i]], names[report.predictions[i]]
        save(
            feature_maps_figure(
                report.images[i],
                layers,
                title=_("test image {i}: true {truth}, predicted {guess}").format(
                    i=i, truth=truth, guess=guess
                ),
            ),
            f"feature_maps_{i}.png",
            gettext(
                "Feature maps after ReLU of test image {i} (each map scaled to its own maximum)"
            ).format(i=i),
        )
    target = run_dir / "report.html"
    atomic_write_text(target, _html(report, pictures))
    return target


def build_report(
    run_dir: Path,
    *,
    model: Any,
    initial_conv1_weight: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    normalize: tuple[Any, Any],
    history: list[dict[str, Any]],
    class_names: list[str],
) -> Path:
    """`analyse_run` (runs the model) then `render_report`: the run's pictures and
    `report.html` in `run_dir`; returns the HTML's path. Arguments: see `analyse_run`."""
    report = analyse_run(
        run_dir,
        model=model,
        initial_conv1_weight=initial_conv1_weight,
        test_images=test_images,
        test_labels=test_labels,
        normalize=normalize,
        history=history,
        class_names=class_names,
    )
    return render_report(report, Path(run_dir))
