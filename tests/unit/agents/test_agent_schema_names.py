"""Agent and provider names: blank means the same in the published schema and on the server."""

from __future__ import annotations

import re

import pytest
from pydantic import TypeAdapter, ValidationError

from voxdialog.api.agent_schemas import NOT_BLANK, AgentName, ProviderNames

NAMES: TypeAdapter[str] = TypeAdapter(AgentName)
CHAINS: TypeAdapter[list[str]] = TypeAdapter(ProviderNames)


@pytest.mark.parametrize("blank", [" ", "\u0085", "\ufeff", "\x1c", "\t\u2028 "])
def test_a_name_of_only_space_like_characters_is_refused(blank: str) -> None:
    # The published pattern refuses them too, so a schema-driven client is never surprised.
    assert re.search(NOT_BLANK, blank) is None
    with pytest.raises(ValidationError):
        NAMES.validate_python(blank)
    with pytest.raises(ValidationError):
        CHAINS.validate_python([blank])


def test_names_are_kept_without_their_surrounding_space() -> None:
    assert NAMES.validate_python("\u0085 Support desk \t") == "Support desk"
    assert CHAINS.validate_python([" primary", "backup "]) == ["primary", "backup"]
