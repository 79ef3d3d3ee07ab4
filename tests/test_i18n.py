"""cnnkit in Japanese: the catalog is complete, compiled, chosen as documented, and never
changes machine-readable output.

Oracles: the messages are found in the code (ast, the parser, argparse's source), not listed
here; the committed `.mo` is compared with the `.po` compiled by our msgfmt and, where GNU
gettext's `msgfmt` is installed, by it; JSON output is compared byte for byte across languages.
"""

from __future__ import annotations

import ast
import gettext
import os
import re
import shutil
import string
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cnnkit.cli.catalog import collect_messages, po_path
from cnnkit.cli.main import main
from cnnkit.core import i18n
from cnnkit.core.po import mo_bytes, read_po
from cnnkit.core.tables import render_table
from cnnkit.core.text import display_width

PO = po_path("ja")
MO = PO.with_suffix(".mo")


@pytest.fixture(autouse=True)
def _english_after() -> Iterator[None]:
    yield
    i18n.set_language("en")  # main(--lang ja) leaves the process in Japanese


def _placeholders(text: str) -> tuple[list[str], list[str]]:
    """The `{field}` names (sorted) and the printf conversions (`%(x)s`, `%s`, in order)."""
    fields = sorted(
        f"{name}!{conv}" if conv else name
        for _, name, _, conv in string.Formatter().parse(text)
        if name is not None
    )
    printf = re.findall(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[sdrfgeix%]", text)
    return fields, sorted(p for p in printf if p != "%%")


def _entries() -> dict[tuple[str, str | None], list[str]]:
    return {(e.msgid, e.msgid_plural): e.msgstr for e in read_po(PO) if e.msgid}


def test_every_message_has_a_japanese_translation() -> None:
    catalog = _entries()
    missing = sorted(key[0][:70] for key in collect_messages() if not all(catalog.get(key) or [""]))
    assert not missing, (
        f"{len(missing)} messages without a Japanese translation: run "
        f"`python -m cnnkit.cli.catalog`, then translate them in {PO}: {missing}"
    )


def _error_calls() -> Iterator[tuple[str, ast.Call]]:
    """Every call that makes a user-facing error in the package: `XError(...)` and
    `XError.from_template(...)` for the error classes the catalog reads."""
    from cnnkit.cli.catalog import ERROR_CLASSES, PACKAGE_DIR

    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            named = isinstance(func, ast.Name) and func.id in ERROR_CLASSES
            templated = isinstance(func, ast.Attribute) and func.attr == "from_template"
            if named or templated:
                yield f"{path.relative_to(PACKAGE_DIR)}:{node.lineno}", node


# errors whose first argument is a variable, and where its catalog message comes from
BUILT_ELSEWHERE = {
    ("calc/arithmetic.py", "template"),  # assembled from the pieces in ERROR_WORDS
    ("ops/conv.py", "template"),  # a Message("...") literal just above
    ("training/loop.py", "result"),  # TrainingDiverged(result) marks its template with N_
    ("web/api.py", "e.template"),  # an error re-raised with its own template
    ("web/api.py", "str(e).replace(repr(name), upload).replace(name, upload)"),  # same, untemplated
}


def test_every_error_line_is_a_catalog_message() -> None:
    """An error built from an f-string or a join would reach a Japanese reader in English:
    each error's first argument is a literal (a template with fields, or the whole line)."""
    calls = list(_error_calls())
    assert len(calls) > 250  # the walk found the package's errors
    built = [
        where
        for where, call in calls
        if call.args
        and not (isinstance(call.args[0], ast.Constant) and call.args[0].value)
        and (where.split(":")[0], ast.unparse(call.args[0])) not in BUILT_ELSEWHERE
    ]
    assert not built, f"errors whose line is built at run time (use from_template): {built}"
    catalog = {key[0] for key in collect_messages()}
    literal = [c.args[0].value for _, c in calls if c.args and isinstance(c.args[0], ast.Constant)]
    assert set(literal) <= catalog


def test_error_fields_marked_as_words_are_translated(capsys: pytest.CaptureFixture[str]) -> None:
    """A Message inside an error (an English word the library chose) is worded in Japanese
    too, while the error's English line stays what the library wrote."""
    from cnnkit.core.errors import CnnkitError
    from cnnkit.core.i18n import error_message

    inner = CnnkitError.from_template("{n} layers", n=3)
    err = CnnkitError.from_template(
        "'{name}' must be from 0 to {size_1} ({what}). Got {value}.",
        name="layer",
        size_1=2,
        what=i18n.Message("{n} layers", n=3),
        value=7,
    )
    assert str(err) == "'layer' must be from 0 to 2 (3 layers). Got 7."
    i18n.set_language("ja")
    worded = error_message(err)
    assert worded == "'layer' は 0 から 2 の範囲で指定してください (3 層)。7 が渡されました。"
    assert error_message(inner) == "3 層"
    wrapped = CnnkitError.from_template("{what}: {e}", what="x", e=inner)
    assert error_message(wrapped).endswith(": 3 層")


@pytest.mark.parametrize("language", ["ja"])
def test_translations_keep_every_placeholder(language: str) -> None:
    for (msgid, plural), msgstr in _entries().items():
        for text in msgstr:
            if not text:
                continue
            # braces in a message that is not a format string (R_{l-1}) are compared too
            assert _placeholders(text) == _placeholders(msgid), (msgid, text)
            if plural is not None:
                assert _placeholders(text)[1] == _placeholders(plural)[1], (plural, text)


def test_help_translations_keep_the_help_formatting_valid() -> None:
    """argparse %-formats each help text: a stray % in a translation would crash --help."""
    for (msgid, _), msgstr in _entries().items():
        if "%(default)s" in msgid:
            assert all(text % {"default": 1} for text in msgstr)


def test_committed_mo_is_the_po_compiled() -> None:
    assert MO.read_bytes() == mo_bytes(read_po(PO)), "run `python -m cnnkit.core.po`"
    with MO.open("rb") as f:
        ours = gettext.GNUTranslations(f)
    assert ours.gettext("options") == "オプション"
    assert ours.gettext("usage: ") == "使い方: "


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext's msgfmt not installed")
def test_our_msgfmt_agrees_with_gnu_msgfmt(tmp_path: Path) -> None:
    out = tmp_path / "gnu.mo"
    subprocess.run(["msgfmt", "--check-format", "-o", str(out), str(PO)], check=True)
    with out.open("rb") as f, MO.open("rb") as g:
        gnu, ours = gettext.GNUTranslations(f), gettext.GNUTranslations(g)
    assert gnu._catalog == ours._catalog  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        ([], {}, "en"),
        (["size", "--lang", "ja"], {"LANG": "en_US.UTF-8"}, "ja"),
        (["--lang=ja", "size"], {}, "ja"),
        (["size", "--lang", "en"], {"CNNKIT_LANG": "ja"}, "en"),
        ([], {"CNNKIT_LANG": "ja", "LANG": "en_US.UTF-8"}, "ja"),
        ([], {"CNNKIT_LANG": "ja_JP.UTF-8"}, "ja"),
        ([], {"LANG": "ja_JP.UTF-8"}, "ja"),
        ([], {"LC_ALL": "ja_JP.eucJP", "LANG": "en_US.UTF-8"}, "ja"),
        ([], {"LC_ALL": "C", "LANG": "ja_JP.UTF-8"}, "en"),  # LC_ALL wins over LANG
        ([], {"LANGUAGE": "fr:ja", "LANG": "en_US"}, "ja"),  # the first known of the list
        ([], {"LC_MESSAGES": "ja_JP", "LANG": "C"}, "ja"),
        ([], {"LANG": "de_DE.UTF-8"}, "en"),
        (["size", "--", "--lang", "ja"], {}, "en"),  # after `--` it is not an option
    ],
)
def test_language_is_chosen_in_the_documented_order(
    argv: list[str], env: dict[str, str], expected: str
) -> None:
    assert i18n.detect_language(argv, env) == expected


def test_help_and_argparse_words_are_japanese(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["size", "--lang", "ja", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("使い方: cnnkit size")
    assert "位置引数:" in out and "オプション:" in out
    assert "このヘルプを表示して終了する" in out
    assert "一つの層の出力サイズを" in out  # the command's own description
    assert "--lang {en,ja}" in out  # every command has --lang


def test_default_suffix_is_translated(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["rf", "--lang", "ja", "--help"])
    out = capsys.readouterr().out
    assert "（既定値: " in out and "(default: " not in out


def test_argparse_errors_are_japanese(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["size", "28", "--lang", "ja", "--pool", "--padding"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnkit size: エラー: 引数 --padding")
    assert err.endswith(": 値を一つ指定してください（`cnnkit size --help` を参照）\n")
    with pytest.raises(SystemExit):
        main(["--lang", "ja", "sizee"])
    assert "無効な選択肢です: 'sizee'" in capsys.readouterr().err


def test_library_errors_are_worded_in_japanese(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["size", "28", "--kernel", "0", "--lang", "ja"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "cnnkit size: エラー: conv2d の引数 'kernel_size' には正の整数か整数の組を指定して"
        "ください。0 が渡されました。"
    )
    assert main(["size", "3", "--kernel", "5", "--lang", "ja"]) == 2
    err = capsys.readouterr().err
    assert "高さ方向のカーネルサイズ 5 がパディング後の入力サイズ 3" in err
    # the same errors in English are the library's own lines
    assert main(["size", "28", "--kernel", "0", "--lang", "en"]) == 2
    assert "The 'kernel_size' parameter of conv2d must be" in capsys.readouterr().err


def test_lang_variable_alone_switches_to_japanese() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("CNNKIT_LANG", "LANGUAGE", "LC_ALL")}
    env.update(LANG="ja_JP.UTF-8", LC_MESSAGES="")
    out = subprocess.run(
        [sys.executable, "-m", "cnnkit", "size", "28", "--kernel", "0"],
        capture_output=True, text=True, env=env, encoding="utf-8",
    )  # fmt: skip
    assert out.returncode == 2
    assert "エラー: conv2d の引数 'kernel_size'" in out.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["size", "28", "--kernel", "3", "--padding", "same", "--json"],
        ["params", "--in", "3", "--out", "64", "--kernel", "7", "--json"],
        ["rf", "vgg-like", "--chapter", "--json"],
        ["chapter", "--json"],
    ],
)
def test_json_is_identical_in_every_language(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = []
    for lang in ("en", "ja"):
        assert main([*argv, "--lang", lang]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert outputs[0].lstrip().startswith(("{", "["))


def test_chapter_reads_in_japanese(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chapter", "1.2", "--lang", "ja"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1.2  畳み込み演算の基礎\n")
    assert "本文と値が違う項目: 出力" in out
    assert "注: 本文に示された 3×3 の出力は" in out
    assert "3 個の例を再現しました。本文の出力と値が違うのは 2 箇所です。" in out


def test_tables_align_by_display_width() -> None:
    text = render_table(
        ["層", "出力サイズ", "受容野"], [["conv1", "26", "3"], ["プーリング", "13", "4"]]
    )
    lines = text.splitlines()
    # every column starts at the same terminal cell on every line (the rule excepted)
    starts = []
    for line in (lines[0], lines[2], lines[3]):
        cells = re.finditer(r"\S+", line)
        starts.append([display_width(line[: m.start()]) for m in cells])
    assert starts[0] == starts[1] == starts[2]
    assert display_width(lines[1]) == max(display_width(line) for line in lines)
    assert display_width("受容野") == 6 and display_width("MACs") == 4


def test_size_in_japanese_still_loads_no_torch() -> None:
    """Translation adds no heavy import: the same modules as in English, and never torch."""
    loaded = []
    for lang in ("en", "ja"):
        code = (
            "import sys; from cnnkit.cli.main import main; "
            f"main(['size', '28', '--kernel', '3', '--lang', '{lang}']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'numpy', 'matplotlib', 'PIL')))"
        )
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        loaded.append(run.stdout.strip().splitlines()[-1])
    assert loaded[0] == loaded[1]
    assert "'torch'" not in loaded[1]


def test_the_page_catalog_has_every_key_in_both_languages() -> None:
    from cnnkit.cli.catalog import web_catalog

    page = web_catalog()
    assert set(page["en"]) == set(page["ja"])
    for key, english in page["en"].items():
        assert page["ja"][key].strip(), key
        assert _placeholders(page["ja"][key])[0] == _placeholders(english)[0], key


def test_the_page_speaks_the_catalogs_japanese() -> None:
    """One mechanism: the page's Japanese is the .po's (`python -m cnnkit.cli.catalog --web`)."""
    from cnnkit.cli.catalog import web_catalog

    page = web_catalog()
    po = {e.msgctxt: e for e in read_po(PO) if e.msgctxt is not None}
    assert set(po) == set(page["en"]), "run `python -m cnnkit.cli.catalog`"
    for key, english in page["en"].items():
        assert po[key].msgid == english, f"{key}: run `python -m cnnkit.cli.catalog`"
        assert po[key].msgstr == [page["ja"][key]], (
            f"{key}: i18n.json and {PO.name} disagree; edit the .po and run "
            "`python -m cnnkit.cli.catalog --web`"
        )


# docs/glossary.md: one Japanese word per idea. The variants on the right are not used.
GLOSSARY_VARIANTS = {
    "チャネル": ("チャンネル",),
    "フィルタ": ("フィルター",),
    "畳み込み": ("畳込み", "たたみ込み", "コンボリューション"),
    "特徴マップ": ("特徴量マップ",),
    "ダイレーション": ("膨張率", "拡張率"),
    "パラメータ": ("パラメーター",),
    "積和演算": ("乗算累算",),
    "誤差逆伝播法": ("誤差逆伝搬", "バックプロパゲーション"),
    "実行": ("学習結果",),  # a run (runs/NAME)
}


def test_every_japanese_text_follows_the_glossary() -> None:
    from cnnkit.cli.catalog import web_catalog

    texts = [t for e in read_po(PO) if e.msgid for t in e.msgstr]
    texts += list(web_catalog()["ja"].values())
    glossary = (Path(__file__).resolve().parents[1] / "docs" / "glossary.md").read_text("utf-8")
    for term, variants in GLOSSARY_VARIANTS.items():
        assert term in glossary, term
        for variant in variants:
            used = [t[:40] for t in texts if variant in t]
            assert not used, f"{variant!r} instead of {term!r}: {used}"


@pytest.mark.parametrize("console_encoding", ["cp932", "ascii"])
def test_redirected_output_is_utf8_whatever_the_locale(console_encoding: str) -> None:
    """Windows' cp932 (or a C locale) cannot encode · or ⊛: piped output is UTF-8 instead of
    a UnicodeEncodeError, and byte-identical to the UTF-8 run."""
    outputs = []
    for encoding in ("utf-8", console_encoding):
        env = {**os.environ, "PYTHONIOENCODING": encoding}
        run = subprocess.run(
            [sys.executable, "-m", "cnnkit", "chapter", "1.2", "--lang", "ja"],
            capture_output=True, env=env,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr.decode("utf-8", "replace")
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1]
    assert "畳み込み演算の基礎" in outputs[1].decode("utf-8")


def test_files_are_written_as_utf8(tmp_path: Path) -> None:
    from cnnkit.core.files import atomic_write_text

    atomic_write_text(tmp_path / "r.html", "受容野 ⊛ −")
    assert (tmp_path / "r.html").read_bytes() == "受容野 ⊛ −".encode()


def test_wrap_fits_the_width_and_keeps_the_text() -> None:
    from cnnkit.core.text import wrap

    text = (
        "fp32 のマスター重みを保った autocast の精度。auto: bf16 対応の CUDA デバイスか、"
        "avx512_bf16/AMX を持つ CPU でだけ bf16（既定値: fp32。--resume では元の実行の値）"
    )
    for width in (20, 33, 54):
        lines = wrap(text, width)
        assert all(display_width(line) <= width + 2 for line in lines)  # + a kinsoku mark
        assert "".join(lines).replace(" ", "") == text.replace(" ", "")
        assert not any(line[0] in "、。）" or line[-1] == "（" for line in lines)


def test_japanese_help_fits_the_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Option help (the indented lines argparse wraps) fits 80 cells (+ a kinsoku mark);
    descriptions are printed as written, in both languages."""
    monkeypatch.setenv("COLUMNS", "80")
    for command in (["train"], ["summary"], ["rf"], ["kernels"], []):
        with pytest.raises(SystemExit):
            main([*command, "--lang", "ja", "--help"])
        lines = capsys.readouterr().out.splitlines()
        too_wide = [line for line in lines if line.startswith(" ") and display_width(line) > 82]
        assert not too_wide, (command, too_wide)


@pytest.mark.parametrize("language", ["en", "ja"])
def test_every_help_fits_a_narrow_terminal(
    language: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every command's --help, descriptions and epilogs included (they used to be printed as
    written, 130 columns wide), fits 60 cells: one kinsoku mark over at most, or a line that
    is one unbreakable word (a long path or command)."""
    from cnnkit.cli.main import build_parser
    from cnnkit.cli.translate import _parsers

    monkeypatch.setenv("COLUMNS", "60")
    i18n.set_language(language)
    for parser in _parsers(build_parser()):
        text = parser.format_help()
        for line in text.splitlines():
            words = line.split()
            if display_width(line) > 62:
                assert len(words) <= 2 or max(display_width(w) for w in words) > 40, line
    i18n.set_language("en")


def _column_starts(line: str) -> list[int]:
    """The display cell where each run of non-space text starts (a header or a cell)."""
    return [display_width(line[: m.start()]) for m in re.finditer(r"\S+", line)]


def _assert_columns_end_together(table_lines: list[str], right_cols: int) -> None:
    """The last `right_cols` columns are right-aligned: they end at the same display cell on
    the header line and on every full row."""
    ends = []
    for line in table_lines:
        cells = list(re.finditer(r"\S+", line))
        ends.append([display_width(line[: m.end()]) for m in cells][-right_cols:])
    assert all(e == ends[0] for e in ends), ends


def test_rf_table_is_japanese_and_english_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["rf", "conv3,pool2,conv3", "--input", "28", "--chapter"]
    assert main(args) == 0
    english = capsys.readouterr().out
    assert english.splitlines()[0].split() == [
        "layer",
        "spec",
        "r",
        "jump",
        "start",
        "output",
        "chapter",
        "R",
    ]
    assert "receptive field of the last layer: 8×8 input pixels (H×W), jump 2×2" in english
    assert "(differs)" in english
    assert main([*args, "--lang", "ja"]) == 0
    ja = capsys.readouterr().out
    lines = ja.splitlines()
    assert lines[0].split() == [
        "層",
        "表記",
        "受容野",
        "ジャンプ",
        "開始位置",
        "出力",
        "本文の",
        "R",
    ]
    assert lines[2].startswith("入力 ") and "（本文と違う）" in ja
    assert "最後の層の受容野: 入力 8×8 ピクセル (H×W)、ジャンプ 2×2" in ja
    # the numbers are the English run's; the r/jump/start columns end at the same cell
    assert [ln.split()[2:5] for ln in lines[3:6]] == [
        ln.split()[2:5] for ln in english.splitlines()[3:6]
    ]
    # left columns start, right-aligned columns end, at the same display cell on every line
    table = [lines[0], *lines[3:6]]
    starts = [_column_starts(ln)[:2] for ln in table]
    assert all(s == starts[0] for s in starts), starts
    ends = [[display_width(ln[: m.end()]) for m in re.finditer(r"\S+", ln)][2:5] for ln in table]
    assert all(e == ends[0] for e in ends), ends
    assert main([*args, "--json"]) == 0
    json_en = capsys.readouterr().out
    assert main([*args, "--json", "--lang", "ja"]) == 0
    assert capsys.readouterr().out == json_en


def test_summary_is_japanese_and_english_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    from cnnkit.analysis.summary import summary
    from cnnkit.analysis.summary.table import summary_text
    from cnnkit.models.registry import create_model

    assert main(["summary", "simple-cnn", "--flops"]) == 0
    english = capsys.readouterr().out
    # the library's own text (no catalog) is what the English command prints
    s = summary(create_model("simple-cnn"), (1, 28, 28))
    assert english.rstrip("\n") == summary_text(s, flops=True)
    assert english.splitlines()[2].split()[:4] == ["Layer", "Type", "Output", "shape"]
    assert main(["summary", "simple-cnn", "--flops", "--lang", "ja"]) == 0
    ja = capsys.readouterr().out
    lines = ja.splitlines()
    assert lines[0] == "SimpleCNN、入力 (1, 1, 28, 28)"
    header = lines[2]
    assert header.split() == [
        "層", "種類", "出力形状", "パラメータ数", "積和演算", "受容野", "ジャンプ", "開始位置"
    ]  # fmt: skip
    # right-aligned columns (parameters … start) end at the header's cell on every conv row
    rows = [ln for ln in lines if ln.startswith(("conv1 ", "pool ", "conv2 "))]
    _assert_columns_end_together([header, *rows], 5)
    assert "入力全体" in ja and "whole input" not in ja
    totals = [ln for ln in lines if ln.startswith(("パラメータ数の合計:", "学習対象外"))]
    assert len(totals) == 2
    # the values of the totals start at the same display cell
    value_cells = {display_width(re.sub(r"(:\s+).*", r"\1", t)) for t in totals}
    assert len(value_cells) == 1, totals
    assert "FLOPs の合計:" in ja and "活性化のメモリ:" in ja
    assert main(["summary", "simple-cnn", "--json"]) == 0
    json_en = capsys.readouterr().out
    assert main(["summary", "simple-cnn", "--json", "--lang", "ja"]) == 0
    assert capsys.readouterr().out == json_en


def test_train_speaks_japanese_and_english_is_unchanged(
    capsys: pytest.CaptureFixture[str], mnist_data_dir: Path, tmp_path: Path
) -> None:
    args = ["train", "--dry-run", "--limit", "64", "--test-limit", "64"]
    args += ["--data-dir", str(mnist_data_dir)]
    assert main(args) == 0
    english = capsys.readouterr().out
    assert re.fullmatch(
        r"dry run: one batch of 64 trained \(loss \d\.\d{4}\) and one test batch evaluated; no "
        r"run folder written \(the dataset itself is fetched into the data dir if it was "
        r"missing\)\n",
        english,
    ), english
    assert main([*args, "--lang", "ja"]) == 0
    ja = capsys.readouterr().out
    loss = re.search(r"loss (\d\.\d{4})", english).group(1)  # type: ignore[union-attr]
    assert ja.startswith(f"ドライラン: バッチサイズ 64 のバッチを 1 つ学習し（損失 {loss}）")
    # a real (tiny) run: the start line, the epoch line, and the paths aligned by display width
    run = ["train", "--epochs", "1", "--limit", "64", "--test-limit", "64", "--no-progress"]
    run += ["--data-dir", str(mnist_data_dir), "--out", str(tmp_path), "--lang", "ja"]
    assert main(run) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.match(
        r"レシピ chapter、モデル simple-cnn: デバイス cpu、精度 fp32、\d+ スレッド", lines[0]
    )
    assert re.match(r"エポック 1/1  学習 損失 \d\.\d{4} 正解率 [\d.]+%  テスト 損失", lines[1])
    paths = [ln for ln in lines if ln.startswith(("実行:", "チェックポイント:", "レポート:"))]
    assert len(paths) >= 2
    assert len({display_width(re.sub(r"(:\s+).*", r"\1", ln)) for ln in paths}) == 1, paths


def test_kernel_list_is_japanese_and_english_is_unchanged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from cnnkit.imaging.kernels import get_kernel, list_kernels

    assert main(["kernels", "--list"]) == 0
    english = capsys.readouterr().out
    infos = list_kernels()
    for info in infos:  # the registry's English description, unchanged
        assert f": {info.description}\n" in english
    assert main(["kernels", "--list", "--lang", "ja"]) == 0
    ja = capsys.readouterr().out
    assert "sobel-x: Sobel の x 方向微分: 縦のエッジ、右が明るいところで +\n" in ja
    assert "identity (size=3): 画像をそのまま通す\n" in ja
    # the matrices are the same lines; only the descriptions changed
    assert [ln for ln in ja.splitlines() if ln.startswith("    ")] == [
        ln for ln in english.splitlines() if ln.startswith("    ")
    ]
    assert sum(ln.startswith("    [") for ln in ja.splitlines()) == sum(
        len(get_kernel(i.name)) for i in infos
    )
    assert main(["kernels", "--list", "--json"]) == 0
    json_en = capsys.readouterr().out
    assert main(["kernels", "--list", "--json", "--lang", "ja"]) == 0
    assert capsys.readouterr().out == json_en
