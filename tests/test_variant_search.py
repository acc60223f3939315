"""benchmarks.variant_search: its candidates are within the phone budget, its interleaving rotates the order
of the artifacts, its summary is the p50 of all calls and the median of per-round ratios."""

import pytest

from adamatting.budget import MOBILE_BUDGET, count_config
from benchmarks.variant_search import CANDIDATES, candidate_model, interleaved, summarize


@pytest.mark.parametrize("name", [n for n in CANDIDATES if n != "shipped"])
def test_every_candidate_is_within_the_phone_budget(name):
    size = count_config(candidate_model(name).cfg, (512, 512))
    assert size["gmacs"] <= MOBILE_BUDGET["gmacs"] and size["params"] <= MOBILE_BUDGET["params"]


def test_interleaving_rotates_the_order_every_round():
    calls = []
    runners = {k: (lambda k: lambda *_: calls.append(k))(k) for k in "abc"}
    times = interleaved(runners, (), rounds=3, runs=2, warmup=1)
    assert calls[:3] == list("abc")   # warm-up
    assert calls[3:] == list("aabbcc") + list("bbccaa") + list("ccaabb")
    assert all(len(v) == 3 and all(len(r) == 2 for r in v) for v in times.values())


def test_summary_is_the_p50_of_all_calls_and_the_median_of_round_ratios():
    times = {("m", "onnxruntime/fp32"): [[10, 10], [20, 20], [10, 10]],
             ("m", "onnxruntime/int8"): [[5, 5], [16, 16], [6, 6]],
             ("m", "openvino/fp32"): [[8, 8]] * 3, ("m", "openvino/int8"): [[4, 4]] * 3}
    s = summarize(times)["m"]
    assert s["onnxruntime/fp32"] == 10 and s["onnxruntime/int8"] == 6
    assert s["onnxruntime int8/fp32"] == pytest.approx(0.6)   # rounds: 0.5, 0.8, 0.6
    assert s["openvino int8/fp32"] == pytest.approx(0.5)
