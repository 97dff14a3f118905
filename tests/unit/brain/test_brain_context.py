import datetime as dt

from voxdialog.brain.base import BrainTurn, HistoryMessage
from voxdialog.brain.context import (
    approx_tokens,
    build_messages,
    system_prompt,
    task_context,
    trim_history,
)
from voxdialog.brain.tasks import TaskRecord
from voxdialog.providers.base import ToolCall

NOW = dt.datetime(2025, 6, 11, 9, 5)  # a Wednesday morning


def tasks(n: int) -> list[TaskRecord]:
    return [TaskRecord(id=f"t{i}", title=f"Task number {i}") for i in range(1, n + 1)]


def history(n: int, *, chars: int = 40) -> tuple[HistoryMessage, ...]:
    return tuple(
        HistoryMessage("user" if i % 2 == 0 else "assistant", f"m{i:02d} " + "x" * (chars - 4))
        for i in range(n)
    )


def test_approx_tokens_is_a_quarter_of_the_characters_rounded_up() -> None:
    assert approx_tokens("") == 0
    assert approx_tokens("abcd") == 1
    assert approx_tokens("abcde") == 2
    assert approx_tokens("x" * 400) == 100


def test_task_context_names_the_day_and_the_open_tasks() -> None:
    line = task_context(tasks(3), now=NOW)
    assert "Wednesday 2025-06-11, 09:05" in line
    assert "3 open tasks" in line
    for i in (1, 2, 3):
        assert f"“Task number {i}”" in line
    assert "more" not in line


def test_task_context_names_at_most_eight_titles_and_counts_the_rest() -> None:
    line = task_context(tasks(11), now=NOW)
    assert "11 open tasks" in line
    assert "“Task number 8”" in line
    assert "Task number 9" not in line
    assert "and 3 more" in line


def test_task_context_without_tasks_or_without_a_store_still_gives_the_date() -> None:
    assert task_context([], now=NOW).endswith("The user has no open tasks.")
    assert task_context([TaskRecord(id="t1", title="Buy milk")], now=NOW).endswith(
        "1 open task: “Buy milk”."
    )
    only_date = task_context(None, now=NOW)
    assert "2025-06-11" in only_date
    assert "task" not in only_date


def test_task_context_clips_a_very_long_title() -> None:
    line = task_context([TaskRecord(id="t1", title="word " * 100)], now=NOW)
    assert len(line) < 200
    assert "…" in line


def test_system_prompt_joins_the_parts_that_are_not_empty() -> None:
    prompt = system_prompt(
        "You are Vox.", instructions="  ", guidance="Use tools.", context="Today"
    )
    assert prompt == "You are Vox.\n\nUse tools.\n\nToday"
    assert system_prompt("", instructions="Be brief.") == "Be brief."


def test_trim_history_keeps_at_most_the_newest_max_messages() -> None:
    kept = trim_history(history(10), max_messages=4, budget_tokens=10_000)
    assert [m.text[:3] for m in kept] == ["m06", "m07", "m08", "m09"]
    assert trim_history(history(10), max_messages=0, budget_tokens=10_000) == ()


def test_trim_history_drops_the_oldest_messages_to_fit_the_budget() -> None:
    # Each message is 40 characters, so 10 tokens.
    kept = trim_history(history(10), max_messages=50, budget_tokens=35)
    assert [m.text[:3] for m in kept] == ["m07", "m08", "m09"]
    assert sum(approx_tokens(m.text) for m in kept) <= 35


def test_trim_history_stops_at_a_message_too_big_so_there_is_no_gap() -> None:
    messages = (
        HistoryMessage("user", "old and short"),
        HistoryMessage("assistant", "y" * 4000),
        HistoryMessage("user", "new and short"),
    )
    kept = trim_history(messages, max_messages=10, budget_tokens=100)
    assert [m.text for m in kept] == ["new and short"]


def test_trim_history_skips_empty_messages_and_unknown_roles() -> None:
    messages = (
        HistoryMessage("user", "hello"),
        HistoryMessage("assistant", "   "),
        HistoryMessage("tool", "{}"),
        HistoryMessage("assistant", "hi there"),
    )
    kept = trim_history(messages, max_messages=10, budget_tokens=100)
    assert [(m.role, m.text) for m in kept] == [("user", "hello"), ("assistant", "hi there")]


def test_build_messages_puts_the_system_prompt_first_and_the_user_message_last() -> None:
    turn = BrainTurn("what is on my list", history=history(4))
    messages = build_messages(turn, system="You are Vox.", max_history=20, budget_tokens=1000)
    assert [m.role for m in messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert messages[0].content == "You are Vox."
    assert messages[-1].content == "what is on my list"
    assert [m.content for m in messages[1:-1]] == [m.text for m in history(4)]


def test_build_messages_keeps_the_whole_request_under_the_budget() -> None:
    system = "s" * 400  # 100 tokens
    turn = BrainTurn("u" * 200, history=history(30))  # 50 tokens, then 10 per message
    budget = 300
    messages = build_messages(turn, system=system, max_history=100, budget_tokens=budget)
    assert messages[0].content == system
    assert messages[-1].content == turn.text
    assert len(messages) == 2 + 15  # (300 - 150) / 10 history messages
    assert sum(approx_tokens(m.content) for m in messages) <= budget
    assert messages[-2].content == history(30)[-1].text  # the newest history survives


def test_build_messages_never_drops_the_system_prompt_or_the_user_message_over_budget() -> None:
    turn = BrainTurn("u" * 2000, history=history(6))
    messages = build_messages(turn, system="s" * 2000, max_history=20, budget_tokens=200)
    assert [m.role for m in messages] == ["system", "user"]
    assert messages[-1].content == turn.text


def test_build_messages_leaves_out_an_empty_user_message() -> None:
    messages = build_messages(
        BrainTurn(""), system="You are Vox.", max_history=5, budget_tokens=500
    )
    assert [m.role for m in messages] == ["system"]


def test_tool_calls_and_their_results_stay_in_the_history_as_pairs() -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Oslo"}')
    messages = (
        HistoryMessage("user", "weather?"),
        HistoryMessage("assistant", "", tool_calls=(call,)),
        HistoryMessage("tool", '{"temp_c": 21}', tool_call_id="call_1"),
        HistoryMessage("tool", "orphan", tool_call_id="call_9"),
    )
    kept = trim_history(messages, max_messages=10, budget_tokens=100)
    assert [(m.role, m.tool_call_id) for m in kept] == [
        ("user", None),
        ("assistant", None),
        ("tool", "call_1"),
    ]
    built = build_messages(
        BrainTurn("and tomorrow?", history=kept), system="s", max_history=10, budget_tokens=1000
    )
    assert built[2].tool_calls == (call,)
    assert built[3].tool_call_id == "call_1"
