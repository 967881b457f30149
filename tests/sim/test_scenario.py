"""The scenario format: presets, TOML files, parameters and the one-line errors of a bad file."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from monitor.sim import PRESETS, Dist, Flap, load_scenario
from monitor.sim.behaviour import host_rng, is_down, is_listed, pick_error, sample_ms
from monitor.sim.scenario import apply_changes
from monitor.sim.specs import Behaviour

README = Path(__file__).resolve().parents[2] / "README.md"


def test_presets_are_demo_chaos_herd_impostor_and_scale() -> None:
    assert set(PRESETS) == {"demo", "chaos", "herd", "impostor", "scale"}


def test_demo_has_a_reasoning_model_an_image_model_and_an_embedding_model() -> None:
    sc = load_scenario("demo")
    kinds = {m.id: (m.kind, m.reasoning) for m in sc.models}
    assert kinds["hermes-3-8b-tee"] == ("text", True)
    assert kinds["z-image-turbo"] == ("image", False)
    assert kinds["bge-multilingual-gemma2"] == ("embedding", False)


def test_demo_has_a_slow_a_flapping_and_a_keyless_host() -> None:
    hosts = {h.name: h.behaviour for h in load_scenario("demo").hosts}
    assert hosts["hermes-slow"].ttft.median_ms >= 5 * hosts["hermes-fast"].ttft.median_ms
    assert hosts["hermes-flapping"].flap is not None
    assert hosts["gemma-nokey"].key_distributed is False


def test_chaos_has_one_host_per_failure_mode() -> None:
    hosts = {h.name: h for h in load_scenario("chaos").hosts}
    faults = {h.behaviour.fault for h in hosts.values()}
    assert faults >= {"hang", "slow_headers", "html", "redirect", "error_event", "cut", "endless", "bad_json"}
    statuses = {s for h in hosts.values() for s, _ in h.behaviour.errors}
    assert statuses >= {429, 500, 502, 503}
    assert hosts["tls"].tls
    assert hosts["refused"].behaviour.down_mode == "refuse"
    assert hosts["normalised"].listed_as.startswith("HTTP://") and hosts["normalised"].listed_as.endswith("/")
    assert hosts["localhost"].listed_as.startswith("http://localhost:")


def test_scale_takes_keyword_parameters() -> None:
    sc = load_scenario("scale", hosts=7, models=3, ttft_ms=25)
    assert len(sc.hosts) == 7 and len(sc.models) == 3
    assert all(h.behaviour.ttft == Dist("fixed", 25.0) for h in sc.hosts)


def test_scale_takes_parameters_written_after_a_colon() -> None:
    sc = load_scenario("scale:hosts=12,ttft_ms=5,sd_ms=1.5")
    assert len(sc.hosts) == 12
    assert sc.hosts[0].behaviour.ttft == Dist("normal", 5.0, 1.5)


def test_scale_rejects_an_unknown_parameter() -> None:
    with pytest.raises(ValueError, match="unknown parameter 'nodes'"):
        load_scenario("scale", nodes=3)


def test_fixed_presets_take_no_parameters() -> None:
    with pytest.raises(ValueError, match="takes no parameters"):
        load_scenario("demo", hosts=3)


def test_the_full_example_in_the_readme_is_a_valid_scenario(tmp_path: Path) -> None:
    block = re.search(r"#### Full example.*?```toml\n(.*?)```", README.read_text(), re.S)
    assert block is not None
    path = tmp_path / "example.toml"
    path.write_text(block.group(1))
    sc = load_scenario(str(path))
    assert sc.hosts and sc.models


def test_a_bare_number_is_a_fixed_delay_in_milliseconds() -> None:
    assert apply_changes(Behaviour(), {"ttft": 80}).ttft == Dist("fixed", 80.0)


def test_distributions_are_read_from_tables() -> None:
    b = apply_changes(
        Behaviour(),
        {
            "ttft": {"dist": "lognormal", "median_ms": 600, "sigma": 0.2},
            "itl": {"dist": "normal", "mean_ms": 20, "sd_ms": 4},
        },
    )
    assert b.ttft == Dist("lognormal", 600.0, 0.2)
    assert b.itl == Dist("normal", 20.0, 4.0)


def test_down_takes_a_bool_or_windows_and_flap_a_period() -> None:
    b = apply_changes(Behaviour(), {"down": [[10, 20]], "flap": {"period": 30, "down_for": 10, "offset": 5}})
    assert b.down_windows == ((10.0, 20.0),) and b.down is False
    assert b.flap == Flap(30.0, 10.0, 5.0)


def test_down_windows_are_relative_to_the_start() -> None:
    b = apply_changes(Behaviour(), {"down": [[10, 20]]})
    assert [is_down(b, t) for t in (0, 9.9, 10, 19.9, 20)] == [False, False, True, True, False]


def test_flapping_is_down_for_down_for_seconds_of_every_period() -> None:
    b = apply_changes(Behaviour(), {"flap": {"period": 30, "down_for": 10, "offset": 15}})
    assert [is_down(b, t) for t in (0, 14, 15, 24, 25, 44, 45)] == [
        False,
        False,
        True,
        True,
        False,
        False,
        True,
    ]


def test_listed_windows_add_and_remove_a_host_over_time() -> None:
    b = apply_changes(Behaviour(), {"listed": [[20, 40]]})
    assert [is_listed(b, t) for t in (0, 20, 39, 40)] == [False, True, True, False]


def test_same_seed_and_host_draw_the_same_samples() -> None:
    dist = Dist("lognormal", 100.0, 0.5)
    a = [sample_ms(dist, host_rng(7, "h1")) for _ in range(3)]
    b = [sample_ms(dist, host_rng(7, "h1")) for _ in range(3)]
    assert a == b
    assert sample_ms(dist, host_rng(7, "h1")) != sample_ms(dist, host_rng(8, "h1"))
    assert sample_ms(dist, host_rng(7, "h1")) != sample_ms(dist, host_rng(7, "h2"))


def test_error_rates_are_drawn_per_request() -> None:
    b = apply_changes(Behaviour(), {"errors": {"429": 0.25, "500": 0.25}})
    rng = random.Random(1)
    draws = [pick_error(b, rng) for _ in range(4000)]
    assert 0.2 < draws.count(429) / 4000 < 0.3
    assert 0.2 < draws.count(500) / 4000 < 0.3


ONE = '[[models]]\nid = "m"\n[[hosts]]\nname = "a"\nmodels = ["m"]\n'
BAD_FILES = [
    ('name = "x"\nhosts = []\n', "at least one [[models]]"),
    ('[[models]]\nid = "m"\n', "at least one [[hosts]]"),
    ('[[models]]\nid = "m"\n[[hosts]]\nname = "a"\nmodels = ["nope"]\n', "'nope' is not declared"),
    (ONE + "speed = 3\n", "unknown key 'speed'"),
    (ONE + 'ttft = { dist = "gamma" }\n', "ttft.dist"),
    (
        ONE + "errors = { 500 = 0.7, 429 = 0.6 }\n",
        "add up",
    ),
    (ONE + "errors = { 200 = 0.1 }\n", "not a 4xx"),
    (ONE + 'fault = "explode"\n', "fault"),
    (ONE + 'fault = "redirect"\n', "redirect_to"),
    (
        ONE + ONE.split("\n", 2)[2],
        "duplicate",
    ),
    (ONE + "down = [[20, 10]]\n", "end must be after"),
    (ONE + 'listed_as = "http://x"\n', "{port}"),
    ('[[models]]\nid = "m-thinking"\n[[hosts]]\nname = "a"\nmodels = ["m-thinking"]\n', "-thinking alias"),
    (
        ONE + '[gateway]\nfault = "boom"\n',
        "gateway.fault",
    ),
    ("[[models]\n", "invalid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_a_bad_file_gives_one_clear_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        load_scenario(str(path))
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_an_unknown_name_is_neither_preset_nor_file() -> None:
    with pytest.raises(ValueError, match=r"no such preset \(demo, chaos, herd, impostor, scale\) or file"):
        load_scenario("no-such-thing.toml")
