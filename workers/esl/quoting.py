"""Values inside FreeSWITCH command lines: quoted exactly as FreeSWITCH un-quotes them. Pure.

A value from a call (the caller's number and name come from the SIP ``From`` header, i.e.
from whoever dials in) or from a CRM must never be able to add a channel variable, end a
``{...}`` block, split a dial string, or expand ``${...}`` on the switch. This module has two
halves:

* **What FreeSWITCH does** (a port of the C code of FreeSWITCH 1.10, ``src/switch_utils.c``
  ``switch_separate_string`` / ``cleanup_separated_string`` / ``switch_find_end_paren``,
  ``src/switch_event.c`` ``switch_event_create_brackets``, ``mod_commands``
  ``originate_function`` and ``src/switch_channel.c`` ``switch_channel_expand_variables``):
  :func:`separate_string`, :func:`parse_var_block`, :func:`parse_originate`,
  :func:`expand_variables`. The tests and the ESL test peer parse with these.
* **Encoders** built on those rules: :func:`var_block` (``{name=value,...}`` for the
  ``originate`` API or an application's dial string), :func:`split_arg` (one argument of an
  application that splits its data with ``switch_separate_string``, e.g. ``speak``'s
  ``|`` or ``say``'s space), :func:`app_arg` (any ``execute-app-arg``, which FreeSWITCH
  expands before the application runs) and :func:`token` (a word of an API command line:
  a UUID, a queue name).

The rules, from the C source:

1. ``originate <args>`` splits its argument at unquoted, unescaped spaces, then each word is
   cleaned: leading/trailing spaces dropped, paired ``'`` removed, and ``\\'`` ``\\"``
   ``\\\\`` ``\\n`` ``\\r`` ``\\t`` ``\\s`` (space) unescaped.
2. The dial string's leading ``{...}`` block ends at the first ``}`` that balances the
   braces; nothing escapes a brace, so a value may not contain ``{`` or ``}``. Before that,
   ``:_:`` anywhere splits an enterprise originate, so a value may not contain it either.
3. The block is split at unquoted, unescaped ``,`` (or at the character after a leading
   ``^^``), each piece cleaned again with ``\\,`` unescaped as well; each piece is split
   once at the first unquoted ``=`` and the value cleaned a third time.
4. An application's argument is expanded first (``\\$`` becomes ``$``, ``\\\\`` becomes
   ``\\``, ``\\'`` vanishes, ``${name}`` is replaced, ``${api(args)}`` *runs an API
   command*) whenever it contains ``${`` or an escape.

Each layer's escaping doubles the backslashes of the layer inside it; the encoders apply the
layers from the inside out, and :func:`var_block` checks its output by parsing it back.
Newlines, carriage returns and NUL are refused everywhere: ESL commands are one line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

__all__ = [
    "ENTERPRISE_DELIM",
    "app_arg",
    "cleanup_separated_string",
    "expand_variables",
    "find_end_paren",
    "parse_originate",
    "parse_var_block",
    "representable",
    "separate_string",
    "split_arg",
    "strip_unrepresentable",
    "token",
    "var_block",
]

ESCAPE: Final = "\\"
ENTERPRISE_DELIM: Final = ":_:"
"""``SWITCH_ENT_ORIGINATE_DELIM``: searched in the whole dial string before any parsing."""

_UNESCAPE: Final = {"n": "\n", "r": "\r", "t": "\t", "s": " "}
_FORBIDDEN: Final = frozenset("\r\n\x00")
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_TOKEN: Final = re.compile(r"[A-Za-z0-9_.:@+#*/=-]+")
_API_WORD: Final = re.compile(r"[^\s'\\\x00-\x1f\x7f]+")

# ====================================================================== FreeSWITCH's parsing


def cleanup_separated_string(text: str, delim: str | None) -> str:
    """``cleanup_separated_string()``: strip spaces and paired quotes, unescape.

    ``delim`` is the separator the string was split at (None for the blank splitter); an
    escaped separator is unescaped too.
    """
    i, n = 0, len(text)
    while i < n and text[i] == " ":
        i += 1
    out: list[str] = []
    end: int | None = None
    inside = False
    while i < n:
        ch = text[i]
        if ch == ESCAPE and i + 1 < n:
            nxt = text[i + 1]
            if nxt in "'\"\\" or (delim and nxt == delim) or nxt in _UNESCAPE:
                out.append(nxt if nxt in "'\"\\" or nxt == delim else _UNESCAPE[nxt])
                end = len(out)
                i += 2
                continue
        if ch == "'" and (inside or "'" in text[i + 1 :]):
            inside = not inside
            if inside:
                end = len(out)
        else:
            out.append(ch)
            if ch != " " or inside:
                end = len(out)
        i += 1
    return "".join(out if end is None else out[:end])


def separate_string(buf: str, delim: str, limit: int = 1024) -> list[str]:
    """``switch_separate_string()``: split at unquoted, unescaped ``delim``, at most
    ``limit`` pieces (the last takes the rest), each piece cleaned; ``^^X`` first makes
    ``X`` the separator."""
    if buf.startswith("^^") and len(buf) >= 4:
        delim, buf = buf[2], buf[3:]
    if delim == " ":
        return _separate_blank(buf, limit)
    starts: list[int] = []
    cuts: list[int] = []
    i, n = 0, len(buf)
    inside = False
    looking = False
    while i < n and len(starts) < limit:
        if not looking:  # START: a piece begins here
            starts.append(i)
            looking = True
            continue
        ch = buf[i]
        if ch == ESCAPE:
            i += 1
        elif ch == "'" and (inside or "'" in buf[i + 1 :]):
            inside = not inside
        elif ch == delim and not inside:
            cuts.append(i)
            looking = False
        i += 1
    pieces = [buf[s : cuts[k] if k < len(cuts) else n] for k, s in enumerate(starts)]
    return [cleanup_separated_string(p, delim) for p in pieces]


def _separate_blank(buf: str, limit: int) -> list[str]:
    starts: list[int] = []
    cuts: list[int] = []
    i, n = 0, len(buf)
    inside = False
    state = "start"
    while i < n and len(starts) < limit:
        if state == "start":
            starts.append(i)
            state = "skip-initial"
            continue
        ch = buf[i]
        if state == "skip-initial":
            if ch == " ":
                i += 1
            else:
                state = "find"
            continue
        if state == "find":
            if ch == ESCAPE:
                i += 1
            elif ch == "'":
                inside = not inside
            elif ch == " " and not inside:
                cuts.append(i)
                state = "skip-ending"
            i += 1
            continue
        if ch == " ":  # skip-ending
            i += 1
        else:
            state = "start"
    pieces = [buf[s : cuts[k] if k < len(cuts) else n] for k, s in enumerate(starts)]
    return [cleanup_separated_string(p, None) for p in pieces]


def find_end_paren(text: str, open_: str = "{", close: str = "}") -> int | None:
    """``switch_find_end_paren()``: index of the brace closing the first one, or None."""
    i = 0
    while i < len(text) and text[i] == " ":
        i += 1
    if i >= len(text) or text[i] != open_:
        return None
    depth = 1
    for j in range(i + 1, len(text)):
        if text[j] == open_ and open_ != close:
            depth += 1
        elif text[j] == close:
            depth -= 1
            if depth == 0:
                return j
    return None


def parse_var_block(
    data: str, open_: str = "{", close: str = "}", delim: str = ","
) -> tuple[list[tuple[str, str]], str] | None:
    """``switch_event_create_brackets()`` on one leading block: ``(variables, rest)``, or
    None when the block does not close (FreeSWITCH answers ``Parse Error``)."""
    end = find_end_paren(data, open_, close)
    if end is None:
        return None
    inner = data[data.index(open_) + 1 : end]
    if inner.startswith("^^") and len(inner) >= 3:
        delim, inner = inner[2], inner[3:]
    variables: list[tuple[str, str]] = []
    for piece in separate_string(inner, delim) if inner else []:
        pair = separate_string(piece, "=", 2)
        if len(pair) == 2:
            variables.append((pair[0], pair[1]))
    return variables, data[end + 1 :]


def parse_dial_string(data: str) -> tuple[list[tuple[str, str]], str] | None:
    """What ``switch_ivr_originate`` makes of a dial string: its ``{...}`` variables (every
    leading block) and the rest; None for a parse error or an enterprise (``:_:``) split."""
    if ENTERPRISE_DELIM in data:
        return None
    variables: list[tuple[str, str]] = []
    data = data.lstrip(" ")
    while data.startswith("{"):
        parsed = parse_var_block(data)
        if parsed is None:
            return None
        found, data = parsed
        variables += found
    return variables, data.lstrip(" ")


def parse_originate(args: str) -> tuple[list[tuple[str, str]], str, list[str]] | None:
    """The ``originate`` API's reading of ``args``: ``(variables, dial string, the other
    arguments)``; None when FreeSWITCH would refuse it (usage or parse error)."""
    argv = separate_string(args.strip(), " ", 10)
    if not 2 <= len(argv) <= 7:
        return None
    parsed = parse_dial_string(argv[0])
    if parsed is None:
        return None
    variables, dial = parsed
    return variables, dial, argv[1:]


def expand_variables(arg: str) -> str | None:
    """``switch_channel_expand_variables()`` for an argument with no variables to expand:
    its escapes resolved; None when it holds a ``${...}`` FreeSWITCH would expand."""
    if not (_var_check(arg) or _has_escaped_data(arg)):
        return arg
    out: list[str] = []
    i, n = 0, len(arg)
    while i < n:
        ch = arg[i]
        if ch == ESCAPE and i + 1 < n:
            nxt = arg[i + 1]
            if nxt == "$":
                i += 1
                if i + 1 < n and arg[i + 1] == "$":
                    i += 1
                out.append(arg[i])
                i += 1
                continue
            if nxt == "'":
                i += 2
                continue
            if nxt == ESCAPE:
                out.append(ESCAPE)
                i += 2
                continue
        if ch == "$":
            if i + 1 < n and arg[i + 1] == "$":
                i += 1  # "$$" not followed by "{" is copied as one "$"
            if i + 1 < n and arg[i + 1] == "{":
                return None
        out.append(ch)
        i += 1
    return "".join(out)


_VAR_START: Final = re.compile(r"\$\\*\{")


def _var_check(text: str) -> bool:
    """``switch_string_var_check_const``: a ``$``, any backslashes, then ``{``."""
    return "$" in text and _VAR_START.search(text) is not None


def _has_escaped_data(text: str) -> bool:
    at = text.find(ESCAPE)
    while at >= 0 and at + 1 < len(text):
        if text[at + 1] in "\\nst'":
            return True
        at = text.find(ESCAPE, at + 1)
    return False


# ====================================================================== encoders


def _check(value: str, field: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{field}: expected text, got {type(value).__name__}")
    bad = _FORBIDDEN.intersection(value)
    if bad:
        raise ValueError(
            f"{field} {value[:60]!r} contains {', '.join(repr(c) for c in sorted(bad))}:"
            " FreeSWITCH commands are one line; remove control characters first"
        )
    return value


def representable(value: str) -> bool:
    """True when :func:`var_block` can carry ``value`` (no CR, LF, NUL, brace or ``:_:``)."""
    return not (
        _FORBIDDEN.intersection(value) or "{" in value or "}" in value or ENTERPRISE_DELIM in value
    )


def strip_unrepresentable(value: str) -> str:
    """``value`` without what a channel variable cannot carry (for untrusted caller data)."""
    cleaned = "".join(c for c in value if c not in _FORBIDDEN and c not in "{}")
    while ENTERPRISE_DELIM in cleaned:
        cleaned = cleaned.replace(ENTERPRISE_DELIM, "::")
    return cleaned


def split_arg(value: str, delim: str, *, field: str = "argument") -> str:
    """``value`` as one piece of data FreeSWITCH splits at ``delim`` with
    ``switch_separate_string`` (``" "`` for the blank splitter): it comes back unchanged.

    Backslashes, quotes and the separator are escaped; spaces become ``\\s`` where they would
    be lost (leading and trailing ones, and all of them for the blank splitter). The result holds no raw ``delim``. It is
    meant for a piece after the first (a leading ``^^X`` of the whole data picks another
    separator; every caller here puts a fixed word first).
    """
    _check(value, field)
    if not value:
        return "''"  # a paired quote cleans up to nothing but still makes a piece
    if (
        "\\" not in value
        and "'" not in value
        and "\t" not in value
        and (
            " " not in value
            if delim == " "
            else delim not in value and value[0] != " " and value[-1] != " "
        )
    ):
        return value  # nothing below would change a character (the usual case)
    out: list[str] = []
    # cleanup keeps inner spaces of a piece; only the blank splitter needs them all escaped
    first = len(value) - len(value.lstrip(" ")) if delim != " " else len(value)
    last = len(value.rstrip(" ")) if delim != " " else 0
    for at, ch in enumerate(value):
        if ch in "\\'" or (ch == delim and ch != " "):
            out.append(ESCAPE + ch)
        elif ch == " " and (at < first or at >= last):
            out.append("\\s")
        elif ch == "\t":
            out.append("\\t")
        else:
            out.append(ch)
    return "".join(out)


def app_arg(value: str, *, field: str = "application argument") -> str:
    """An ``execute-app-arg`` that FreeSWITCH's variable expansion gives back unchanged.

    Expansion only runs when the text holds ``${`` or an escape; then every ``\\`` and
    ``$`` is escaped so none starts a variable (``${system(...)}`` would run a command).
    """
    _check(value, field)
    if not (_var_check(value) or _has_escaped_data(value)):
        return value
    return value.replace(ESCAPE, ESCAPE * 2).replace("$", "\\$")


def is_api_word(value: str) -> bool:
    """Whether ``value`` reaches an API function unchanged as the last argument of its
    command line (``uuid_setvar <uuid> <name> <value>``): ``switch_separate_string`` splits
    at whitespace and strips quotes and backslashes, so it holds none, nor a control byte."""
    return _API_WORD.fullmatch(value) is not None


def token(value: str, field: str) -> str:
    """A word of an API command line (UUID, queue, extension): checked, not quoted.

    Raises ValueError naming ``field`` when ``value`` is empty or holds anything but
    letters, digits and ``_ . : @ + # * / = -``.
    """
    if not value or not _TOKEN.fullmatch(value):
        raise ValueError(
            f"{field} {value[:60]!r} is not a single word of letters, digits and _.:@+#*/=-"
        )
    return value


def var_block(variables: Mapping[str, str] | Iterable[tuple[str, str]], *, api: bool = True) -> str:
    """``{name=value,...}`` that FreeSWITCH reads back as exactly these variables.

    ``api=True`` for the ``originate`` (``bgapi originate``) API, whose arguments are split
    at spaces and cleaned once more; ``api=False`` for a dial string inside an application
    argument (``bridge``), which then goes through :func:`app_arg`. Names must be plain
    identifiers; empty values are left out (FreeSWITCH sets nothing for ``name=``). Raises
    ValueError naming the variable when a value holds CR, LF, NUL, a
    brace or ``:_:`` (see :func:`strip_unrepresentable` for untrusted values).
    """
    items = list(variables.items()) if isinstance(variables, Mapping) else list(variables)
    pieces: list[str] = []
    for name, value in items:
        if not _NAME.fullmatch(name):
            raise ValueError(f"channel variable name {name!r}: use letters, digits, '_', '.'")
        field = f"channel variable {name}"
        _check(value, field)
        if not value:
            continue  # FreeSWITCH ignores "name=" (no second piece): leave it out
        if not representable(value):
            raise ValueError(
                f"{field} {value[:60]!r} contains a brace or ':_:', which no quoting carries"
                " through originate; strip them (strip_unrepresentable) first"
            )
        inner = split_arg(value, "=", field=field)  # the value after the first '='
        pieces.append(f"{name}={_escape(inner, ',')}")  # one piece of the ',' split
    block = "{" + ",".join(pieces) + "}"
    if api:
        block = _escape(block, None)  # one word of the originate API's blank split
    return block


def _escape(text: str, delim: str | None) -> str:
    """One layer: escape what ``cleanup_separated_string(delim)`` un-escapes (the inner
    layers left no raw quotes; inner spaces matter only to the blank splitter)."""
    out = text.replace(ESCAPE, ESCAPE * 2).replace("'", "\\'")
    if delim:
        return out.replace(delim, ESCAPE + delim)
    return out.replace(" ", "\\s")  # the blank splitter: no space may split the word


def check_var_block(block: str, variables: Iterable[tuple[str, str]], *, api: bool) -> None:
    """Parse ``block`` as FreeSWITCH would and raise AssertionError unless it gives exactly
    ``variables`` (used by the tests; cheap enough to call in debugging)."""
    expected = [(name, value) for name, value in variables if value]
    if api:
        parsed = parse_originate(f"{block}user/1000 &park()")
        got = None if parsed is None else (parsed[0], parsed[1])
    else:
        expanded = expand_variables(app_arg(f"{block}user/1000"))
        got = None if expanded is None else parse_dial_string(expanded)
    if got != (expected, "user/1000"):
        raise AssertionError(f"{block!r} reads back as {got!r}, not {expected!r}")
