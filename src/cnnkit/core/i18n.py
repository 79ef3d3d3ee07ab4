"""The language of cnnkit's words: one gettext catalog (`cnnkit.po` -> `cnnkit.mo`), stdlib only.

The English sentence is the message id (gettext's design), so code reads in English and a
missing translation falls back to it. The language is chosen once per process, in this order:

1. `--lang ja|en` anywhere on the command line (read from argv before the parser is built,
   so `--help` is translated too);
2. the `CNNKIT_LANG` environment variable;
3. the POSIX variables `LANGUAGE` (a colon list), `LC_ALL`, `LC_MESSAGES`, `LANG` (the first
   one set wins, as in gettext), e.g. `ja_JP.UTF-8`;
4. English.

`locale.setlocale` is never called: containers rarely have a `ja_JP` locale generated, and
the catalog does not need one. Machine-readable output (JSON, CSV, metrics, checkpoints) never
goes through `_()`, so it is the same in every language.

`install_argparse()` routes argparse's own words ("usage: ", "options", its errors) through
the same catalog: argparse calls the `gettext`/`ngettext` names it imported, and they are
replaced by functions that look the message up in the current language.
"""

from __future__ import annotations

import functools
import gettext as _gettext
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from cnnkit.core.errors import CnnkitError

__all__ = [
    "DOMAIN",
    "LANGUAGES",
    "LOCALE_DIR",
    "Message",
    "N_",
    "TRANSLATED_FIELDS",
    "chosen_language",
    "detect_language",
    "error_message",
    "error_words",
    "get_language",
    "gettext",
    "install_argparse",
    "language_from_argv",
    "ngettext",
    "normalize_language",
    "set_language",
    "translate",
]

DOMAIN = "cnnkit"
LANGUAGES = ("en", "ja")
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
_POSIX_VARS = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")

_translations: _gettext.NullTranslations = _gettext.NullTranslations()
_language = "en"


def normalize_language(value: str | None) -> str | None:
    """`ja_JP.UTF-8`, `ja-JP`, `JA` -> `ja`; `en_US`, `C`, `POSIX` -> `en`; others -> None."""
    if not value:
        return None
    code = value.strip().split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
    if code in ("c", "posix"):
        return "en"
    return code if code in LANGUAGES else None


def language_from_argv(argv: Sequence[str]) -> str | None:
    """The value of `--lang X` / `--lang=X` in argv (before a bare `--`), normalised, or None.

    An unknown value returns None here; the parser's own `--lang` option refuses it."""
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--lang" and i + 1 < len(argv):
            return normalize_language(argv[i + 1])
        if arg.startswith("--lang="):
            return normalize_language(arg.split("=", 1)[1])
    return None


def chosen_language(
    argv: Sequence[str] = (), environ: Mapping[str, str] | None = None
) -> str | None:
    """The language the user asked cnnkit for: `--lang` in argv, else `CNNKIT_LANG`; None
    when neither says (the locale's language is a default, not a choice)."""
    env = os.environ if environ is None else environ
    return language_from_argv(argv) or normalize_language(env.get("CNNKIT_LANG"))


def detect_language(argv: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> str:
    """The language to use: `--lang` in argv, else `CNNKIT_LANG`, else the POSIX variables."""
    env = os.environ if environ is None else environ
    chosen = chosen_language(argv, env)
    if chosen:
        return chosen
    for var in _POSIX_VARS:
        value = env.get(var)
        if value:
            # LANGUAGE is a priority list (ja:en); the first variable that is set decides
            for part in value.split(":"):
                code = normalize_language(part)
                if code:
                    return code
            return "en"
    return "en"


def set_language(language: str) -> None:
    """Make `language` ('en' or 'ja') the language of every later `gettext` call."""
    global _translations, _language
    code = normalize_language(language)
    if code is None:
        raise ValueError(f"unknown language {language!r}; choose from {', '.join(LANGUAGES)}")
    _translations, _language = _catalog(code), code


@functools.cache
def _catalog(code: str) -> _gettext.NullTranslations:
    if code == "en":
        return _gettext.NullTranslations()
    return _gettext.translation(DOMAIN, LOCALE_DIR, [code], fallback=True)


def _in(language: str | None) -> _gettext.NullTranslations:
    """The catalog of `language` (None: the current language; an unknown one: English)."""
    if language is None:
        return _translations
    return _catalog(normalize_language(language) or "en")


def get_language() -> str:
    """The current language code ('en' unless `set_language` chose another)."""
    return _language


def gettext(message: str, language: str | None = None) -> str:
    """`message` in the current language, or in `language` when given (a server answers each
    request in its own); itself when the catalog has no translation."""
    return _in(language).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for `n`, in the current language."""
    return _translations.ngettext(singular, plural, n)


def N_(message: str) -> str:  # noqa: N802  gettext's name for the marker
    """Marks a message for the catalog without translating it (gettext's convention)."""
    return message


def install_argparse() -> None:
    """Let argparse's own strings follow the current language (idempotent)."""
    import argparse

    argparse._ = gettext  # type: ignore[attr-defined]  # argparse's module-level gettext alias
    argparse.ngettext = ngettext  # type: ignore[attr-defined]  # same, for plural forms


class Message(str):
    """An English sentence (a `str`: JSON, `==` and printing see the English) that remembers
    its template and fields, so that a front end can word it in the reader's language.

    The library returns these where a sentence carries numbers (`cnnkit chapter`'s answers);
    `translate(m)` gives the sentence in the current language, translating the fields that
    are Messages too. A template built at run time (a join) has no catalog entry: it is kept,
    and only its fields are translated.
    """

    template: str
    fields: dict[str, object]

    def __new__(cls, template: str, **fields: object) -> Message:
        obj = super().__new__(cls, template.format(**fields) if fields else template)
        obj.template, obj.fields = template, fields
        return obj

    @classmethod
    def joined(cls, sep: str, items: Sequence[str]) -> Message:
        """`sep.join(items)`, each item translated on its own."""
        fields = {f"m{i}": item for i, item in enumerate(items)}
        return cls(sep.join("{" + k + "}" for k in fields), **fields)


def translate(text: str, language: str | None = None) -> str:
    """`text` in the current language (or `language`): a Message's template and fields, or a
    plain string."""
    if not isinstance(text, Message) or not text.fields:
        return gettext(str(text), language)
    fields = {
        k: translate(v, language) if isinstance(v, Message) else v for k, v in text.fields.items()
    }
    try:
        return gettext(text.template, language).format(**fields)
    except (KeyError, IndexError, ValueError):  # a translation with a broken placeholder
        return str(text)


# fields of the library's common errors (cnnkit.core.checks, cnnkit.calc.arithmetic) that hold
# words ("a positive int", "height", the function's name), marked in cnnkit.cli.translate
TRANSLATED_FIELDS = ("allowed", "axis", "func")


def error_words(err: CnnkitError) -> Message:
    """The English line of `err` as a Message that keeps its template and fields, for wording
    it in any language: errors inside it become Messages too, and so do the words of
    TRANSLATED_FIELDS. Also what a reason kept for later (a skipped file) is stored as."""
    if err.template is None or err.fields is None:
        return Message(str(err))  # a whole line: no fields, translated when the catalog has it

    def field(key: str, value: object) -> object:
        if isinstance(value, CnnkitError):
            return error_words(value)
        if key in TRANSLATED_FIELDS and isinstance(value, str) and not isinstance(value, Message):
            return Message(value)
        return value

    return Message(err.template, **{k: field(k, v) for k, v in err.fields.items()})


def error_message(err: CnnkitError, language: str | None = None) -> str:
    """`err` in the current language (or `language`): its template translated and filled in
    with its fields worded too (`error_words`), else its English line, translated when the
    catalog knows the whole line."""
    return translate(error_words(err), language)
