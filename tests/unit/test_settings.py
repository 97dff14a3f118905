from pathlib import Path

import pytest

from voxdialog.settings import Settings, unknown_environment

TOML = """
[providers.primary]
kind = "openai"
model = "gpt-4o-mini"
api_key_env = "VOX_TEST_KEY"

[providers.local]
kind = "ollama"
model = "llama3.1"

[agent]
llm = ["primary", "local"]

[turns]
silence_duration_ms = 700
"""


def test_providers_and_the_default_agent_come_from_voxdialog_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "voxdialog.toml").write_text(TOML)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VOX_TEST_KEY", "sk-test")
    monkeypatch.setenv("VOXDIALOG_TURNS__SILENCE_DURATION_MS", "800")
    settings = Settings()
    assert settings.agent.llm == ["primary", "local"]
    assert settings.providers["primary"].key() == "sk-test"
    assert settings.providers["local"].key() is None
    assert settings.turns.silence_duration_ms == 800  # the environment beats the file


def test_unknown_settings_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "voxdialog.toml").write_text("[agent]\nllm_chain = ['x']\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="llm_chain"):
        Settings()


def test_a_misspelt_variable_is_refused_with_the_closest_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pydantic-settings alone ignores it: the operator's port would silently stay 8000.
    monkeypatch.setenv("VOXDIALOG_PORTT", "9000")
    with pytest.raises(
        ValueError, match=r"VOXDIALOG_PORTT: not a setting \(did you mean VOXDIALOG_PORT\?\)"
    ):
        Settings()


def test_unknown_environment_knows_nested_groups_and_provider_names() -> None:
    environ = {
        "VOXDIALOG_TURNS__SILENCE_DURATION_MS": "700",
        "VOXDIALOG_PROVIDERS__MINE__HEADERS__X_TEAM": "a",
        "VOXDIALOG_TEST_POSTGRES_URL": "postgresql+asyncpg://x/y",
        "voxdialog_log_level": "debug",  # pydantic-settings matches names in any case
        "VOXDIALOG_PORT__X": "1",
        "VOXDIALOG_PROVIDERS__MINE__MODLE": "x",
        "OTHER_PORT": "1",
    }
    assert unknown_environment(environ) == [
        "VOXDIALOG_PORT__X: not a setting",
        "VOXDIALOG_PROVIDERS__MINE__MODLE: not a setting",
    ]


def test_the_log_level_is_checked_and_upper_cased(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(log_level="debug").log_level == "DEBUG"
    with pytest.raises(ValueError, match="log_level"):
        Settings(log_level="verbose")


def test_port_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="port"):
        Settings(port=0)


def test_the_settings_file_can_live_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "voxdialog.toml").write_text("port = 9001\n")
    elsewhere = tmp_path / "vox.toml"
    elsewhere.write_text("port = 9002\n")
    assert Settings().port == 9001
    assert Settings(config=elsewhere).port == 9002
    monkeypatch.setenv("VOXDIALOG_CONFIG", str(elsewhere))
    assert Settings().port == 9002
    monkeypatch.setenv("VOXDIALOG_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ValueError, match="no such file"):
        Settings()
