import pytest

from stagecheck.engine.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("2m", 120),
        ("1m30s", 90),
        ("90 seconds", 90),
        ("2 minutes", 120),
        ("500ms", 0.5),
    ],
)
def test_durations_as_features_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "30 parsecs", "soon", "1m 30x"])
def test_anything_else_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="write it like 30s"):
        parse_duration(text)


def test_formatting() -> None:
    assert format_duration(2) == "2.0s"
    assert format_duration(75) == "1m15s"
    assert format_duration(3700) == "1h01m"
