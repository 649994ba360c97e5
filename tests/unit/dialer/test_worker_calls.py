"""The dialer worker's FreeSWITCH vocabulary: originate lines, results, transfers (pure)."""

from __future__ import annotations

import pytest
from callmesh.workers.dialer.calls import (
    connect_transfer,
    message_transfer,
    originate_command,
    outcome_of_amd,
    outcome_of_cause,
    parse_originate_result,
)

from callmesh.api.base import Prompt
from callmesh.dialer.campaign import Dial, Outcome
from callmesh.dialer.contacts import Contact


def dial(**attributes: str) -> Dial:
    contact = Contact("c1", "+12125550001", "UTC", attributes)
    variables = {"callmesh_campaign": "renewals", "callmesh_attempt": "renewals.c1.1"}
    return Dial("renewals.c1.1", contact, "+12125550100", "ACME Corp", 25, variables)


def test_originate_carries_caller_id_timeout_and_campaign_variables() -> None:
    line = originate_command(dial(plan="gold, 2y"), "carrier", call_uuid="u-1")
    assert line == (
        "originate {origination_uuid=u-1,origination_caller_id_number=+12125550100,"
        "origination_caller_id_name=ACME_Corp,originate_timeout=25,ignore_early_media=true,"
        "callmesh_campaign=renewals,callmesh_attempt=renewals.c1.1,callmesh_attr_plan=gold__2y}"
        "sofia/gateway/carrier/+12125550001 &park()"
    )


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
