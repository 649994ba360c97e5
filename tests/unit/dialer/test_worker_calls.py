"""The dialer worker's FreeSWITCH vocabulary: originate lines, results, transfers (pure)."""

from __future__ import annotations

import re

import pytest
from callmesh.workers.dialer.calls import (
    connect_transfer,
    message_transfer,
    originate_command,
    outcome_of_amd,
    outcome_of_cause,
    parse_originate_result,
)
from callmesh.workers.esl.quoting import parse_originate, strip_unrepresentable
from hypothesis import given, settings
from hypothesis import strategies as st

from callmesh.api.base import Prompt
from callmesh.dialer.campaign import Dial, Outcome
from callmesh.dialer.contacts import Contact, parse_contact_csv


def dial(**attributes: str) -> Dial:
    contact = Contact("c1", "+12125550001", "UTC", attributes)
    variables = {"callmesh_campaign": "renewals", "callmesh_attempt": "renewals.c1.1"}
    return Dial("renewals.c1.1", contact, "+12125550100", "ACME Corp", 25, variables)


def test_originate_carries_caller_id_timeout_and_campaign_variables() -> None:
    line = originate_command(dial(plan="gold, 2y"), "carrier", call_uuid="u-1")
    assert line == (
        "originate {origination_uuid=u-1,origination_caller_id_number=+12125550100,"
        "origination_caller_id_name=ACME\\sCorp,originate_timeout=25,ignore_early_media=true,"
        "callmesh_campaign=renewals,callmesh_attempt=renewals.c1.1,"
        "callmesh_attr_plan=gold\\\\,\\s2y}sofia/gateway/carrier/+12125550001 &park()"
    )
    variables, target, rest = reads_back(line)
    assert variables["origination_caller_id_name"] == "ACME Corp"
    assert variables["callmesh_attr_plan"] == "gold, 2y"
    assert (target, rest) == ("sofia/gateway/carrier/+12125550001", ["&park()"])


def reads_back(line: str) -> tuple[dict[str, str], str, list[str]]:
    """What FreeSWITCH's originate makes of ``line`` (the ESL quoting module's port)."""
    parsed = parse_originate(line.removeprefix("originate "))
    assert parsed is not None, line
    pairs, target, rest = parsed
    names = [name for name, _ in pairs]
    assert len(names) == len(set(names)), f"a variable appears twice: {names}"
    return dict(pairs), target, rest


# Anything a CSV cell or a caller-ID name can hold once the list parser has skipped rows
# with line breaks and control characters: quotes, commas, braces, '=', '${...}', ':_:'.
cells = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x7f"),
    max_size=40,
) | st.sampled_from(["a,b=c", "x}y{", "${system(rm -rf /)}", "1:_:sofia/x", "'q'", "\\,"])


@settings(max_examples=300, deadline=None)
@given(
    name=cells,
    attributes=st.dictionaries(
        st.from_regex(r"[A-Za-z][A-Za-z0-9 _-]{0,12}", fullmatch=True), cells, max_size=4
    ),
)
def test_no_contact_field_or_caller_id_name_can_add_a_variable_or_move_the_dial_string(
    name: str, attributes: dict[str, str]
) -> None:
    contact = Contact("c1", "+12125550001", "UTC", attributes)
    variables = {"callmesh_campaign": "renewals", "callmesh_attempt": "renewals.c1.1"}
    dialled = Dial("renewals.c1.1", contact, "+12125550100", name, 25, variables)
    line = originate_command(dialled, "carrier", call_uuid="u-1")
    assert "\n" not in line and "\r" not in line
    got, target, rest = reads_back(line)
    assert (target, rest) == ("sofia/gateway/carrier/+12125550001", ["&park()"])
    expected_names = {
        "origination_uuid",
        "origination_caller_id_number",
        "origination_caller_id_name",
        "originate_timeout",
        "ignore_early_media",
        "callmesh_campaign",
        "callmesh_attempt",
    } | {f"callmesh_attr_{re.sub(r'[^A-Za-z0-9_]', '_', k)}" for k in attributes}
    assert set(got) <= expected_names  # an empty value is left out, nothing is added
    assert got["origination_uuid"] == "u-1" and got["callmesh_attempt"] == "renewals.c1.1"
    for key, value in attributes.items():  # exact, or without the braces/':_:' nothing quotes
        carried = got.get(f"callmesh_attr_{re.sub(r'[^A-Za-z0-9_]', '_', key)}", "")
        assert carried in (value, strip_unrepresentable(value)) or len(attributes) > len(
            {re.sub(r"[^A-Za-z0-9_]", "_", k) for k in attributes}
        )
    assert got.get("origination_caller_id_name", "") == strip_unrepresentable(
        name or "+12125550100"
    )


def test_rows_with_a_line_break_or_an_odd_id_are_skipped_and_said_so() -> None:
    parsed = parse_contact_csv(
        'id,phone,name\nok,+12125550001,"Ann"\nnl,+12125550002,"Bo\nb"\na b,+12125550003,Cy\n',
        "UTC",
    )
    assert [c.id for c in parsed.contacts] == ["ok"]
    assert [str(p) for p in parsed.problems] == [
        "row 3: column 'name' holds a line break or control character: put the value on one line",
        "row 4: id 'a b' may hold only letters, digits and _ . @ + : - (up to 128; it names the"
        " call on the switch)",
    ]


@pytest.mark.parametrize(
    ("trunk", "template", "error"),
    [
        ("bad trunk", "sofia/gateway/{trunk}/{number}", "gateway name"),
        ("carrier", "sofia/external/{number}@a b", "space"),
    ],
)
def test_originate_refuses_what_would_break_the_command(
    trunk: str, template: str, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        originate_command(dial(), trunk, call_uuid="u", dial_string=template)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "+OK 7f4de4bc-17d7-11dd-b7a0-db4edd065621\n",
            ("7f4de4bc-17d7-11dd-b7a0-db4edd065621", None),
        ),
        ("-ERR USER_BUSY\n", (None, "USER_BUSY")),
        ("-ERR NO_ANSWER\n", (None, "NO_ANSWER")),
        ("-USAGE: <call url> <exten>\n", (None, ":")),
        ("", (None, "UNKNOWN")),
    ],
)
def test_originate_results(body: str, expected: tuple[str | None, str | None]) -> None:
    assert parse_originate_result(body) == expected


def test_causes_and_amd_verdicts_map_to_outcomes() -> None:
    assert outcome_of_cause("USER_BUSY") is Outcome.BUSY
    assert outcome_of_cause("NO_USER_RESPONSE") is Outcome.NO_ANSWER
    assert outcome_of_cause("UNALLOCATED_NUMBER") is Outcome.FAILED
    assert outcome_of_cause("INVALID_PROFILE") is Outcome.FAILED
    assert outcome_of_amd("MACHINE") is Outcome.MACHINE
    assert outcome_of_amd("NOTSURE") is Outcome.HUMAN  # hanging up on a person is worse
    assert outcome_of_amd(None) is Outcome.HUMAN


def test_transfers_are_inline_dialplans() -> None:
    assert connect_transfer("u", "sales", "cc:8084", "a.c1.1") == (
        "uuid_transfer u 'set:callmesh_queue=sales,set:callmesh_attempt=a.c1.1,"
        "socket:cc:8084 async full' inline"
    )
    said = message_transfer("u", Prompt(text="Sorry, we'll call back, bye"))
    assert (
        said
        == "uuid_transfer u 'speak:flite|kal|Sorry we ll call back bye,hangup:NORMAL_CLEARING' inline"
    )
    assert message_transfer("u", None) == "uuid_transfer u 'hangup:NORMAL_CLEARING' inline"
