"""The narrator against a local OpenAI-compatible server: invented numbers and uncited claims are dropped."""

from __future__ import annotations

import json

import pytest
from tests.agent._support import FakeOpenAI, fake_openai_server

from infersight.advisor.narrator import check_narration, narrate
from infersight.errors import InputError
from infersight.rules.finding import Evidence, ExpectedGain, Finding, Location

FINDING = Finding(
    id="gpu_idle/dev0",
    type="gpu_idle",
    title="GPU idle 35.3% of the window",
    location=Location(scope="device", device=0, time_range_ns=(0, 12_830_000)),
    evidence=[Evidence(metric="idle_ratio", value=0.353, unit="fraction", threshold=0.2, comparison=">")],
    advice=["Capture the decode loop in CUDA graphs."],
    expected_gain=ExpectedGain(low=0.10, high=0.25, basis="idle time between kernels"),
    confidence="medium",
)
GOOD = "The GPU was idle 35.3% of the 12.8 ms window, above the 20% threshold [gpu_idle/dev0]."
NAMES = "On the H100 with Llama-3-8B in fp8, graphs should save 10% to 25% of wall time [gpu_idle/dev0]."
INVENTED = "Fixing it would save 47% of the wall time [gpu_idle/dev0]."
UNCITED = "The GPU was idle 35.3% of the time."
UNKNOWN = "Idle was 35.3% [made_up/dev9]."
WRONG_PRECISION = "It was idle 35.9% of the time [gpu_idle/dev0]."


def test_check_keeps_evidence_and_drops_inventions() -> None:
    narration = check_narration(
        " ".join([GOOD, NAMES, INVENTED, UNCITED, UNKNOWN, WRONG_PRECISION]), [FINDING]
    )
    assert [s.text for s in narration.kept] == [GOOD, NAMES]
    reasons = {d.text: d.reason for d in narration.dropped}
    assert reasons[INVENTED].startswith("47%: not the value of gain")
    assert reasons[UNCITED] == "cites no finding id"
    assert "made_up/dev9" in reasons[UNKNOWN]
    assert "35.9" in reasons[WRONG_PRECISION]


def test_narrate_through_a_local_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERSIGHT_LLM_API_KEY", "test-key")
    FakeOpenAI.reply = lambda _body: f"{GOOD} {INVENTED}"
    with fake_openai_server() as url:
        narration = narrate([FINDING], url=url, model="fake-1")
    assert narration.model == "fake-1"
    assert narration.text == GOOD
    assert [d.text for d in narration.dropped] == [INVENTED]
    sent = FakeOpenAI.requests[-1]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == "Bearer test-key"
    payload = json.loads(sent["body"]["messages"][1]["content"])
    assert payload["findings"][0]["id"] == "gpu_idle/dev0"  # the model sees the findings, nothing else


def test_unreachable_endpoint_is_an_input_error() -> None:
    with pytest.raises(InputError, match="cannot reach"):
        narrate([FINDING], url="http://127.0.0.1:9/v1", model="m", timeout_s=2)


def test_a_number_is_checked_in_the_scope_the_sentence_names() -> None:
    other = FINDING.model_copy(
        update={
            "id": "gpu_idle/dev1",
            "location": Location(scope="device", device=1),
            "evidence": [Evidence(metric="idle_ratio", value=0.5, unit="fraction")],
        }
    )
    both = "[gpu_idle/dev0] [gpu_idle/dev1]"
    right = f"Device 1 was idle 50.0% of the time {both}."
    wrong = f"Device 0 was idle 50.0% of the time {both}."
    nowhere = f"Device 7 was idle 35.3% of the time {both}."
    narration = check_narration(" ".join([right, wrong, nowhere]), [FINDING, other])
    assert [s.text for s in narration.kept] == [right]
    reasons = {d.text: d.reason for d in narration.dropped}
    assert "not the value of idle_ratio" in reasons[wrong]
    assert "no cited finding is about" in reasons[nowhere]
