"""Which messages the catalog must translate, and keeping `cnnkit.po` in step with the code.

The messages are found, not listed by hand:

- every `_("...")` / `gettext("...")` / `ngettext("...", "...", n)` call with literal strings,
  every `XError.from_template("...", ...)` template and every literal `XError("...")` line
  in the package's source (read with `ast`, as xgettext does);
- every help text, description and epilog of the command line (`parser_messages`);
- argparse's own `_()` calls (usage, "options", its errors), read from argparse's source;
- the reproduced chapter's words (section titles, questions, remarks, notes), which the
  library returns in English and `cnnkit chapter` translates when it prints them;
- the playground's strings: every `en` string of `web/static/i18n.json`, one entry per key
  (`msgctxt` = the key), so the page's Japanese comes from the same catalog.

    python -m cnnkit.cli.catalog        # add new messages to the .po (a new page string takes
                                        # the page's current Japanese), drop gone ones, keep every
                                        # translation, compile the .mo
    python -m cnnkit.cli.catalog --web  # also write the .po's Japanese into i18n.json's `ja`

Dev tooling (the tests use it); nothing here runs when a command runs.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

from cnnkit.core.i18n import DOMAIN, LOCALE_DIR
from cnnkit.core.po import Entry, compile_catalog, read_po

__all__ = [
    "ERROR_CLASSES",
    "PACKAGE_DIR",
    "chapter_messages",
    "collect_messages",
    "model_messages",
    "po_path",
    "source_messages",
    "update_po",
    "web_catalog",
    "write_po",
    "write_web_catalog",
]

PACKAGE_DIR = Path(__file__).resolve().parent.parent
WEB_CATALOG = PACKAGE_DIR / "web" / "static" / "i18n.json"
_GETTEXT_NAMES = {"_", "N_", "Message", "gettext", "ngettext", "from_template"}
# a literal English error line is its own message id (cnnkit.cli.translate.error_message)
ERROR_CLASSES = {
    "CnnkitError",
    "DataError",
    "ShapeError",
    "TrainingDiverged",
    "UnsupportedMedia",
    "BodyTooLarge",
    "PortInUse",
}


def po_path(language: str = "ja") -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def _call_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def source_messages(path: Path, ref: str) -> dict[tuple[str, str | None], list[str]]:
    """`(msgid, msgid_plural)` -> references, for the literal gettext calls in one file."""
    found: dict[tuple[str, str | None], list[str]] = {}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or _call_name(node) not in _GETTEXT_NAMES | ERROR_CLASSES:
            continue
        args = [a.value if isinstance(a, ast.Constant) else None for a in node.args]
        if not args or not isinstance(args[0], str):
            continue
        plural = args[1] if _call_name(node) == "ngettext" and len(args) > 1 else None
        key = (args[0], plural if isinstance(plural, str) else None)
        found.setdefault(key, []).append(ref)  # the file only: line numbers would churn the .po
    return found


def chapter_messages() -> set[str]:
    """The English words of `cnnkit chapter` that its text output translates."""
    from cnnkit.analysis.chapter import reproduce
    from cnnkit.analysis.chapter_text import SECTIONS

    words = set(SECTIONS.values())
    for e in reproduce(None):
        words |= {e.question, *(w for w in (e.remark,) if w)}
        for d in e.differences:
            words |= {d.item, d.note}
    return words


def model_messages() -> set[str]:
    """The model registry's descriptions, which `cnnkit models` translates."""
    from cnnkit.models.registry import list_models, model_info

    return {model_info(name).description for name in list_models()}


def collect_messages() -> dict[tuple[str, str | None], list[str]]:
    """Every message of the catalog: `(msgid, msgid_plural)` -> where it comes from."""
    from cnnkit.cli.main import build_parser
    from cnnkit.cli.translate import parser_messages

    found: dict[tuple[str, str | None], list[str]] = {}

    def add(items: dict[tuple[str, str | None], list[str]]) -> None:
        for key, refs in items.items():
            found.setdefault(key, []).extend(refs)

    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        add(source_messages(path, path.relative_to(PACKAGE_DIR.parent).as_posix()))
    add(source_messages(Path(argparse.__file__), "argparse"))
    add({(m, None): ["cli"] for m in parser_messages(build_parser())})
    add({(m, None): ["chapter"] for m in chapter_messages()})
    add({(m, None): ["models"] for m in model_messages()})
    found.pop(("", None), None)
    return found


def _quote(text: str) -> str:
    body = text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
    lines = body.split("\n")
    if len(lines) == 1:
        return f'"{body}"'
    parts = [f"{line}\\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    return '""\n' + "\n".join(f'"{p}"' for p in parts)


def write_po(path: Path, entries: list[Entry]) -> None:
    """Write `entries` as a `.po` file (the header entry first)."""
    out: list[str] = []
    for e in entries:
        if e.fuzzy:
            out.append("#, fuzzy")
        if e.references:
            out.append("#: " + " ".join(sorted(set(e.references))[:4]))
        if e.msgctxt is not None:
            out.append(f"msgctxt {_quote(e.msgctxt)}")
        out.append(f"msgid {_quote(e.msgid)}")
        if e.msgid_plural is not None:
            out.append(f"msgid_plural {_quote(e.msgid_plural)}")
            for i, s in enumerate(e.msgstr or [""]):
                out.append(f"msgstr[{i}] {_quote(s)}")
        else:
            out.append(f"msgstr {_quote(e.msgstr[0] if e.msgstr else '')}")
        out.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out), encoding="utf-8")


_HEADER = (
    "Project-Id-Version: cnnkit\n"
    "Language: ja\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=UTF-8\n"
    "Content-Transfer-Encoding: 8bit\n"
    "Plural-Forms: nplurals=1; plural=0;\n"
)


def web_catalog() -> dict[str, dict[str, str]]:
    """The playground's catalog: {"en": {key: text}, "ja": {key: text}}."""
    data: dict[str, dict[str, str]] = json.loads(WEB_CATALOG.read_text(encoding="utf-8"))
    return data


def _web_entries(old: dict[tuple[str, str], Entry]) -> list[Entry]:
    page = web_catalog()
    entries = []
    for key, english in sorted(page["en"].items()):
        prev = old.get((key, english))
        msgstr = prev.msgstr if prev and all(prev.msgstr) else [page.get("ja", {}).get(key, "")]
        entries.append(Entry(msgid=english, msgstr=msgstr, msgctxt=key, references=["web"]))
    return entries


def update_po(path: Path) -> tuple[int, int]:
    """Bring `path` in step with the code; returns (translated, total) messages."""
    entries_old = read_po(path) if path.exists() else []
    old = {(e.msgid, e.msgid_plural): e for e in entries_old if e.msgctxt is None}
    old_web = {(e.msgctxt, e.msgid): e for e in entries_old if e.msgctxt is not None}  # by key
    header = old.pop(("", None), None) or Entry(msgid="", msgstr=[_HEADER])
    entries = [header]
    for key, refs in sorted(collect_messages().items(), key=lambda kv: (kv[1][0], kv[0][0])):
        prev = old.get(key)
        msgstr = prev.msgstr if prev else [""]
        entries.append(Entry(msgid=key[0], msgid_plural=key[1], msgstr=msgstr, references=refs))
    entries += _web_entries(old_web)
    write_po(path, entries)
    compile_catalog(path)
    translated = sum(bool(e.msgstr and all(e.msgstr)) for e in entries[1:])
    return translated, len(entries) - 1


def write_web_catalog(path: Path) -> None:
    """Write the .po's Japanese page strings into i18n.json's `ja` (its `en` is the source)."""
    page = web_catalog()
    po = {e.msgctxt: e for e in read_po(path) if e.msgctxt is not None}
    page["ja"] = {
        key: po[key].msgstr[0]
        if key in po and po[key].msgid == english
        else page["ja"].get(key, "")
        for key, english in page["en"].items()
    }
    # the page's own layout (its helper writes it so): key order kept, no final newline
    text = json.dumps(page, ensure_ascii=False, indent=1)
    WEB_CATALOG.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    done, total = update_po(po_path())
    print(f"{po_path()}: {done} / {total} messages translated")
    if "--web" in sys.argv[1:]:
        write_web_catalog(po_path())
        print(f"{WEB_CATALOG}: Japanese written from {po_path().name}")
    sys.exit(0)
