"""Quoting values for FreeSWITCH command lines (``callmesh.workers.esl.quoting``).

The parsing half is a port of FreeSWITCH's C code; the first tests pin it to behaviour
FreeSWITCH documents (quoted caller names, ``^^`` delimiters, escaped commas). The encoders
are then checked against that port for every value hypothesis can think of: a value comes
back exactly, or is refused; it never adds a variable, ends the block or changes the dial
string and the other arguments.
"""

from __future__ import annotations

import pytest
from callmesh.workers.esl.quoting import (
    app_arg,
    check_var_block,
    expand_variables,
    is_api_word,
    parse_dial_string,
    parse_originate,
    representable,
    separate_string,
    split_arg,
    strip_unrepresentable,
    token,
    var_block,
)
from hypothesis import given, settings
from hypothesis import strategies as st

# characters that mean something to one of the layers, mixed into random text
SPECIAL = " \t,='\"\\^$:_|{}[]<>()&%@!#;\n\r\x00"
values = st.text(alphabet=st.sampled_from(SPECIAL) | st.characters(), max_size=40)
names = st.from_regex(r"[a-z_][a-z0-9_]{0,15}", fullmatch=True)


# ---------------------------------------------------------------- the port, pinned


def test_originate_reads_a_quoted_caller_name_as_the_wiki_shows() -> None:
    parsed = parse_originate("{origination_caller_id_name='John Doe',x=1}user/1000 &park()")
    assert parsed == ([("origination_caller_id_name", "John Doe"), ("x", "1")], "user/1000",
                      ["&park()"])  # fmt: skip


def test_caret_delimiter_lets_a_value_hold_commas() -> None:
    parsed = parse_dial_string("{^^:absolute_codec_string=PCMU,PCMA:x=1}user/1000")
    assert parsed == ([("absolute_codec_string", "PCMU,PCMA"), ("x", "1")], "user/1000")


def test_escaped_comma_and_first_equals_sign() -> None:
    assert parse_dial_string(r"{a=b\,c,d=e=f}sofia/gw/x") == (
        [("a", "b,c"), ("d", "e=f")],
        "sofia/gw/x",
    )


def test_an_unescaped_comma_or_brace_in_a_value_injects() -> None:
    # what the old f-string did with a caller id of "1,x=y" or "1}": the reason for var_block
    assert parse_dial_string("{cid=1,x=y}user/1")[0] == [("cid", "1"), ("x", "y")]
    assert parse_dial_string("{cid=1}x=2}user/1") == ([("cid", "1")], "x=2}user/1")
    assert parse_dial_string("{a=1:_:b}user/1") is None  # an enterprise originate


def test_separate_string_pieces_and_limit() -> None:
    assert separate_string("a,b,,c", ",") == ["a", "b", "", "c"]
    assert separate_string("x=y=z", "=", 2) == ["x", "y=z"]
    assert separate_string("  a 'b c'   d\\sx ", " ") == ["a", "b c", "d x"]
    assert separate_string("^^|a|b,c", ",") == ["a", "b,c"]


def test_expansion_escapes() -> None:
    assert expand_variables("plain $x") == "plain $x"  # nothing to expand: untouched
    assert expand_variables(r"a\\b \$ c") == r"a\b $ c"
    assert expand_variables("${caller_id_name}") is None
    assert expand_variables("$${domain}") is None


# ---------------------------------------------------------------- encoders, every value


@settings(max_examples=400)
@given(st.dictionaries(names, values, min_size=1, max_size=4), st.booleans())
def test_var_block_reads_back_exactly_or_refuses(variables: dict[str, str], api: bool) -> None:
    if not all(representable(v) for v in variables.values()):
        with pytest.raises(ValueError, match="channel variable"):
            var_block(variables, api=api)
        return
    block = var_block(variables, api=api)
    check_var_block(block, list(variables.items()), api=api)
    assert "\n" not in block and "\r" not in block


@settings(max_examples=300)
@given(values)
def test_hostile_caller_id_cannot_add_a_variable_or_move_the_target(value: str) -> None:
    cid = strip_unrepresentable(value) or "0"
    leg = "6f1c2e1e-1111-4222-8333-444455556666"
    line = f"{var_block({'origination_uuid': leg, 'origination_caller_id_number': cid})}"
    parsed = parse_originate(f"{line}user/1001@example.net &park()")
    assert parsed == (
        [("origination_uuid", leg), ("origination_caller_id_number", cid)],
        "user/1001@example.net",
        ["&park()"],
    )


@given(values, st.sampled_from([" ", "|", ",", "="]))
def test_split_arg_is_one_piece(value: str, delim: str) -> None:
    if not representable(value.replace("{", "").replace("}", "")):
        with pytest.raises(ValueError, match="one line"):
            split_arg(value, delim)
        return
    piece = split_arg(value, delim)
    assert separate_string(f"first{delim}{piece}", delim, 2) == ["first", value]
    if delim != " ":
        assert separate_string(f"first{delim}{piece}{delim}last", delim) == [
            "first",
            value,
            "last",
        ]


@given(values)
def test_app_arg_is_never_expanded(value: str) -> None:
    if any(c in value for c in "\r\n\x00"):
        with pytest.raises(ValueError, match="one line"):
            app_arg(value)
        return
    assert expand_variables(app_arg(value)) == value


@given(values)
def test_speak_text_reaches_the_engine_unchanged(value: str) -> None:
    if any(c in value for c in "\r\n\x00"):
        return
    arg = app_arg("flite|kal|" + split_arg(value, "|"))
    expanded = expand_variables(arg)
    assert expanded is not None
    assert separate_string(expanded, "|", 3) == ["flite", "kal", value]


def test_newlines_are_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"channel variable cid .* one line"):
        var_block({"cid": "1\nsendmsg"})
    with pytest.raises(ValueError, match=r"speech .* one line"):
        app_arg("hi\r\n", field="speech")


def test_token_and_names() -> None:
    assert token("6f1c2e1e-1111-4222-8333-444455556666", "uuid")
    with pytest.raises(ValueError, match="uuid"):
        token("abc def", "uuid")
    with pytest.raises(ValueError, match="variable name"):
        var_block({"a,b": "1"})


@given(st.text(min_size=1, max_size=40))
def test_an_api_word_is_the_last_argument_unchanged(value: str) -> None:
    # what uuid_setvar receives as its value, by the model of switch_separate_string
    if is_api_word(value):
        assert separate_string(f"uuid name {value}", " ", 3) == ["uuid", "name", value]
    else:
        assert any(c.isspace() or c in "'\\" or ord(c) < 32 or c == "\x7f" for c in value)
