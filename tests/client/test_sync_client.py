"""The synchronous client against the real stack: a run followed over SSE to its close, messages, resume."""

from __future__ import annotations

from aimpact_client import Client
from tests.conftest import TenantCtx
from tests.support.runs import CALC_AGENT
from workers.embedded.stack import StackProcess


def test_a_run_streams_its_turns_and_its_close_and_resumes_after_an_event(
    stack: StackProcess, tenant: TenantCtx
) -> None:
    with Client(stack.api_url, api_key=tenant.key) as client:
        agent = client.agents.create(**CALC_AGENT)
        run = client.runs.start(agent["id"], "What is 12 * (3 + 4)?")
        assert (run["status"], run["agent_version"]) == ("queued", 1)

        first = list(client.runs.follow(run["id"]))
        assert [e.event for e in first][:2] == ["run.queued", "run.started"]
        assert {"step.started", "step.completed"} <= {e.event for e in first}
        assert first[-1].event == "run.completed"
        assert first[-1].data["output"] == "Result — calculator: 84"
        assert client.runs.wait(run["id"], timeout_s=10)["output"] == "Result — calculator: 84"

        sent = client.runs.send_message(run["id"], "2 * 3")
        assert sent["turn"]["number"] == 2
        second = list(client.runs.follow(run["id"], after=sent["turn"]["after_event_id"]))
        assert second[0].event == "turn.accepted"
        assert {e.turn for e in second} == {None, 2}  # step events name no turn
        assert (second[-1].event, second[-1].data["output"]) == ("run.completed", "Result — calculator: 6")

        assert client.runs.cancel(run["id"])["id"] == run["id"]  # the conversation closes
        whole = list(client.runs.events(run["id"]))  # ends at run.closed
        assert (whole[-1].event, whole[-1].turn) == ("run.closed", 2)
        assert [e.id for e in whole[: len(first)]] == [e.id for e in first]
        assert len({e.id for e in whole}) == len(whole)

        resumed = list(client.runs.events(run["id"], after=whole[2].id))  # as Last-Event-ID
        assert [e.id for e in resumed] == [e.id for e in whole[3:]]
