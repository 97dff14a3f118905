import pytest

from voxdialog.brain.matching import ACT_AT, ASK_AT, Verdict, match_task, normalise, title_score
from voxdialog.brain.tasks import TaskRecord

TITLES = [
    "Water the plants",
    "Buy milk",
    "Buy groceries",
    "Pay the electricity bill",
    "Book a flight to Berlin",
    "Clean the garage",
    "Renew my passport",
    "Pick up the dry cleaning",
    "Call the dentist",
]
TASKS = [TaskRecord(id=f"t{i}", title=title) for i, title in enumerate(TITLES)]


def best(heard: str):
    found = match_task([heard], TASKS)
    assert found.best is not None
    return found.verdict, found.best.task.title


def test_normalise_drops_articles_plurals_and_punctuation():
    assert normalise("Water the plants!") == normalise("water to plant") == "water plant"
    assert normalise("Book of Flight to Berlin") == normalise("Book a flight to Berlin")
    assert normalise("buy two apples") == normalise("buy 2 apples")


@pytest.mark.parametrize(
    ("heard", "title"),
    [
        ("water the plants", "Water the plants"),
        ("water to plant", "Water the plants"),  # Whisper: "Delete the past water to plant."
        ("by milk", "Buy milk"),
        ("Book of Flight to Berlin", "Book a flight to Berlin"),
        ("paying the electricity bill", "Pay the electricity bill"),
        ("for new my passport", "Renew my passport"),  # a split word
        ("the dentist", "Call the dentist"),
        ("electricity", "Pay the electricity bill"),
    ],
)
def test_clear_matches_act_at_once(heard, title):
    assert best(heard) == (Verdict.ACT, title)


@pytest.mark.parametrize(
    ("heard", "title"),
    [
        ("clean the brush", "Clean the garage"),  # Whisper: "Check off clean the brush."
        ("clean the car", "Clean the garage"),
        ("pay the bill", "Pay the electricity bill"),
        ("call the doctor", "Call the dentist"),
    ],
)
def test_middling_matches_ask_first(heard, title):
    assert best(heard) == (Verdict.ASK, title)


def test_two_equally_good_tasks_are_asked_about_not_acted_on():
    verdict, title = best("buy")
    assert verdict is Verdict.ASK
    assert title in ("Buy milk", "Buy groceries")


@pytest.mark.parametrize("heard", ["feed the cat", "all my tasks", "book a hotel in Rome"])
def test_unrelated_titles_match_nothing(heard):
    assert best(heard)[0] is Verdict.NONE


def test_scores_order_exact_above_misheard_above_unrelated():
    exact = title_score("Water the plants", "Water the plants")
    misheard = title_score("water the plans", "Water the plants")
    unrelated = title_score("feed the cat", "Water the plants")
    assert exact == 100.0
    assert ACT_AT <= misheard < exact
    assert unrelated < ASK_AT


def test_alternative_readings_take_the_best_score():
    found = match_task(["the past water to plant", "water to plant"], TASKS)
    assert found.best is not None
    assert found.best.score == 100.0


def test_thresholds_are_parameters():
    found = match_task(["clean the car"], TASKS, act_at=70.0)
    assert found.verdict is Verdict.ACT
    assert match_task(["clean the car"], TASKS, ask_at=95.0, act_at=99.0).verdict is Verdict.NONE


def test_no_tasks_means_no_match():
    found = match_task(["buy milk"], [])
    assert (found.verdict, found.best) == (Verdict.NONE, None)
