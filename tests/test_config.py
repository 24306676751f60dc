from __future__ import annotations

import os
from pathlib import Path

import pytest

from twinsearch.cli.config import build_settings
from twinsearch.errors import ConfigError


def test_precedence_is_flag_then_environment_then_file_then_default(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('collection = "from-file"\nmodel = "file-model"\nchunk_overlap = 8\n')
    env = {"TWINSEARCH_CONFIG": str(config), "TWINSEARCH_MODEL": "env-model"}
    settings = build_settings({"collection": "from-flag", "model": None}, env)
    assert settings.collection == "from-flag"
    assert settings.model == "env-model"
    assert settings.chunk_overlap == 8
    assert settings.batch_size == 32
    assert settings.data_dir.name == "twinsearch"


def test_data_dir_from_environment_and_flag(tmp_path: Path) -> None:
    env = {"TWINSEARCH_CONFIG": str(tmp_path / "none.toml"), "TWINSEARCH_DATA_DIR": "~/x"}
    (tmp_path / "none.toml").write_text("")
    assert build_settings({}, env).data_dir == Path("~/x").expanduser()
    assert build_settings({"data_dir": tmp_path}, env).data_dir == tmp_path


def test_bad_settings_name_the_fix(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('colection = "typo"\n')
    with pytest.raises(ConfigError, match="unknown setting 'colection'.*valid settings: data_dir"):
        build_settings({}, {"TWINSEARCH_CONFIG": str(config)})
    config.write_text("")
    with pytest.raises(ConfigError, match="TWINSEARCH_THREADS: threads must be a whole number"):
        build_settings({}, {"TWINSEARCH_CONFIG": str(config), "TWINSEARCH_THREADS": "many"})
    with pytest.raises(ConfigError, match="does not exist; fix TWINSEARCH_CONFIG"):
        build_settings({}, {"TWINSEARCH_CONFIG": str(tmp_path / "missing.toml")})
    with pytest.raises(ConfigError, match="segment_mb must be at least 1, not 0"):
        build_settings({}, {"TWINSEARCH_CONFIG": str(config), "TWINSEARCH_SEGMENT_MB": "0"})


def test_free_cores_measures_the_cpu_now_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    from twinsearch import cores

    busy = cores._busy_now(4, seconds=0.05)
    assert busy is None or 0 <= busy <= 4  # None off Linux
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (2.0, 2.0, 2.0))  # a minute behind
    monkeypatch.setattr(cores, "_busy_now", lambda n: 0.2)  # the other job has ended
    assert cores.free_cores() == 1
    assert cores.free_cores(measure=True) == 2


def test_runtime_and_precision_are_checked_before_any_work(tmp_path: Path) -> None:
    env = {"TWINSEARCH_CONFIG": str(tmp_path / "none.toml"), "TWINSEARCH_RUNTIME": "openvino"}
    (tmp_path / "none.toml").write_text("")
    settings = build_settings({"precision": "bf16"}, env)
    assert (settings.runtime, settings.precision) == ("openvino", "bf16")
    assert (build_settings({}, {"TWINSEARCH_CONFIG": env["TWINSEARCH_CONFIG"]}).runtime) == "auto"
    with pytest.raises(ConfigError, match="unknown runtime 'tensorrt'; choose one of auto"):
        build_settings({"runtime": "tensorrt"}, env)
    with pytest.raises(ConfigError, match="unknown precision 'int4'"):
        build_settings({"precision": "int4"}, env)
