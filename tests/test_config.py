from __future__ import annotations

import pytest

from eges.config import default_config, load_config, parse_override, to_toml
from eges.errors import ConfigError


def test_defaults_match_the_paper():
    cfg = default_config()
    assert cfg.sessions.session_gap_seconds == 3600
    assert cfg.sessions.max_user_clicks == 3500
    assert cfg.sessions.max_user_purchases == 1000
    assert cfg.sessions.min_dwell_seconds == 1.0
    assert cfg.walks.walk_length == 10 and cfg.walks.walks_per_node == 20
    assert cfg.train.window == 5


def test_defaults_roundtrip_through_toml(tmp_path):
    path = tmp_path / "eges.toml"
    path.write_text(to_toml(default_config()))
    assert load_config(path).to_dict() == default_config().to_dict()


def test_every_key_has_help():
    text = to_toml(default_config())
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            assert lines[i - 1].startswith("#"), f"no help above {line}"


def test_file_and_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[walks]\nwalk_length = 7\n[sessions]\nkeep_behaviours = ['pv']\n")
    cfg = load_config(path, ["walks.walk_length=12", "train.dimension=16", "sessions.format=taobao"])
    assert cfg.walks.walk_length == 12
    assert cfg.train.dimension == 16
    assert cfg.sessions.keep_behaviours == ("pv",)
    assert cfg.sessions.format == "taobao"


@pytest.mark.parametrize(
    "override, message",
    [
        ("walks.walk_lenght=5", "walks.walk_lenght"),
        ("walk.walk_length=5", "[walk]"),
        ("walks.walk_length=abc", "walks.walk_length must be an integer"),
        ("walks.walk_length=1", "walks.walk_length must be at least 2"),
        ("sessions.format=csv", "sessions.format must be one of"),
        ("graph.undirected=1", "graph.undirected must be true or false"),
        ("walks", "section.key=value"),
        ("train.cold_share=-0.5", "train.cold_share (-0.5) must be between 0 and 1, or -1"),
        ("train.cold_share=2", "train.cold_share must be at most 1"),
    ],
)
def test_bad_config_names_the_key(override, message):
    with pytest.raises(ConfigError, match=__import__("re").escape(message)):
        load_config(None, [override])


def test_bad_toml_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[walks\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def test_parse_override_reads_toml_values():
    assert parse_override("a.b=3") == ("a", "b", 3)
    assert parse_override("a.b=2.5") == ("a", "b", 2.5)
    assert parse_override("a.b=true") == ("a", "b", True)
    assert parse_override("a.b=hello") == ("a", "b", "hello")
    assert parse_override("a.b=['x', 'y']") == ("a", "b", ["x", "y"])


def test_stage_staleness_follows_only_the_keys_a_stage_uses():
    import eges.pipeline.evaluate_stage  # noqa: F401  (registers the evaluation stages)
    from eges.pipeline.registry import STAGES, stage
    from eges.pipeline.runner import stage_config

    cfg = default_config()
    link = STAGES["evaluate_link"]
    # The evaluation trains every method in evaluate.methods, so the main run's method does not matter to it...
    assert stage_config(link, cfg.replace("train", method="bge")) == stage_config(link, cfg.replace("train",
                                                                                                    method="eges"))
    # ...but the trainer's settings do, as they do for the eges stage (which also depends on the method).
    assert stage_config(link, cfg.replace("train", epochs=3)) != stage_config(link, cfg)
    eges = STAGES["eges"]
    assert stage_config(eges, cfg.replace("train", method="bge")) != stage_config(eges, cfg)
    with pytest.raises(ValueError, match="train.nope"):
        stage("bad", sections=("walks",), outputs=(), inputs=lambda i, c: (), ignores=("train.nope",))
