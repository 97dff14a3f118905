from pathlib import Path

import pytest

from voxdialog.settings import Settings

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
