"""Read `.po` catalogs and write `.mo` files: a small pure-Python msgfmt (stdlib only).

Used by the tests (the committed `.mo` must equal the `.po` compiled) and to compile after
editing a translation:

    python -m cnnkit.core.po            # compiles every src/cnnkit/locale/*/LC_MESSAGES/*.po

Supports what cnnkit's catalog uses: `msgid`, `msgid_plural`, `msgstr`, `msgstr[n]`,
`msgctxt`, multi-line strings, C escapes and the `#, fuzzy` flag (fuzzy entries are skipped,
as GNU msgfmt does).
"""

from __future__ import annotations

import ast
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Entry", "compile_catalog", "mo_bytes", "read_po"]


@dataclass
class Entry:
    """One message: its id (and plural id), its translations (one per plural form)."""

    msgid: str
    msgid_plural: str | None = None
    msgstr: list[str] = field(default_factory=list)
    msgctxt: str | None = None
    fuzzy: bool = False
    references: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """The `.mo` key: `ctxt\\x04msgid`, plural ids joined by NUL."""
        base = self.msgid if self.msgid_plural is None else f"{self.msgid}\0{self.msgid_plural}"
        return base if self.msgctxt is None else f"{self.msgctxt}\x04{base}"


def _unquote(text: str, where: str) -> str:
    text = text.strip()
    if not (text.startswith('"') and text.endswith('"')):
        raise ValueError(f"{where}: expected a quoted string, got {text!r}")
    return str(ast.literal_eval(text))


def read_po(path: Path) -> list[Entry]:
    """The entries of a `.po` file, header (msgid "") included, in file order."""
    entries: list[Entry] = []
    cur: Entry | None = None
    field_name = ""
    flags: set[str] = set()
    refs: list[str] = []

    def finish() -> None:
        nonlocal cur
        if cur is not None:
            entries.append(cur)
        cur = None

    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{path}:{n}"
        line = raw.strip()
        if not line:
            finish()
            continue
        if line.startswith("#,"):
            finish()
            flags |= {f.strip() for f in line[2:].split(",")}
            continue
        if line.startswith("#:"):
            finish()
            refs += line[2:].split()
            continue
        if line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if keyword.startswith('"'):
            if cur is None:
                raise ValueError(f"{where}: a continuation line outside an entry")
            _append(cur, field_name, _unquote(line, where))
            continue
        if (
            keyword in ("msgctxt", "msgid")
            and cur is not None
            and (keyword == "msgctxt" or field_name != "msgctxt")
        ):
            finish()
        if cur is None:
            cur = Entry(msgid="", fuzzy="fuzzy" in flags, references=refs)
            flags, refs = set(), []
        field_name = keyword
        _append(cur, field_name, _unquote(rest, where), new=True)
    finish()
    return entries


def _append(entry: Entry, name: str, text: str, *, new: bool = False) -> None:
    if name == "msgid":
        entry.msgid = text if new else entry.msgid + text
    elif name == "msgid_plural":
        entry.msgid_plural = text if new else (entry.msgid_plural or "") + text
    elif name == "msgctxt":
        entry.msgctxt = text if new else (entry.msgctxt or "") + text
    elif name == "msgstr" or name.startswith("msgstr["):
        index = 0 if name == "msgstr" else int(name[7:-1])
        while len(entry.msgstr) <= index:
            entry.msgstr.append("")
        entry.msgstr[index] = text if new else entry.msgstr[index] + text
    else:
        raise ValueError(f"unknown .po keyword {name!r}")


def mo_bytes(entries: list[Entry]) -> bytes:
    """The GNU `.mo` file of `entries` (little-endian, keys sorted, no hash table)."""
    pairs = {
        e.key: "\0".join(e.msgstr)
        for e in entries
        if not e.fuzzy and (e.msgid == "" or any(e.msgstr))
    }
    keys = sorted(pairs)
    ids = [k.encode("utf-8") for k in keys]
    strs = [pairs[k].encode("utf-8") for k in keys]
    n = len(keys)
    start = 7 * 4 + 16 * n  # header, then the two tables of (length, offset)
    table_ids, table_strs, blob = [], [], b""
    for data in ids:
        table_ids += [len(data), start + len(blob)]
        blob += data + b"\0"
    for data in strs:
        table_strs += [len(data), start + len(blob)]
        blob += data + b"\0"
    header = struct.pack("<7I", 0x950412DE, 0, n, 7 * 4, 7 * 4 + 8 * n, 0, 0)
    return header + struct.pack(f"<{4 * n}I", *table_ids, *table_strs) + blob


def compile_catalog(po_path: Path) -> Path:
    """Write `po_path`'s `.mo` next to it and return its path."""
    mo_path = po_path.with_suffix(".mo")
    mo_path.write_bytes(mo_bytes(read_po(po_path)))
    return mo_path


def _main() -> int:
    root = Path(__file__).resolve().parent.parent / "locale"
    for po in sorted(root.glob("*/LC_MESSAGES/*.po")):
        print(compile_catalog(po))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
