"""Durations and sizes as operators write them."""

from __future__ import annotations

import pytest

from otus._config.docs import format_duration, format_size
from otus._config.types import parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("5m", 300.0), ("1h30m", 5400.0), ("250ms", 0.25), ("1d", 86400.0),
     ("1.5s", 1.5), (" 2 m ", 120.0), ("10", 10.0), (7, 7.0), (0.5, 0.5)],
)  # fmt: skip
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "5x", "m5", "-1s", -1, True, None, "1h-5m"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "size"),
    [("64MiB", 64 * 1024**2), ("1GB", 10**9), ("512KiB", 512 * 1024), ("1.5GB", 1_500_000_000),
     ("100", 100), ("2k", 2000), ("1 mib", 1024**2), (4096, 4096)],
)  # fmt: skip
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["lots", "1XB", "-5MiB", -1, True, 1.5, ""])
def test_bad_sizes(bad: object) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(bad)


@pytest.mark.parametrize("seconds", [0.0, 0.25, 1.0, 59.0, 90.0, 3600.0, 5400.0, 86400.0, 93784.0])
def test_rendered_durations_parse_back(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("size", [0, 1, 1000, 1024, 64 * 1024**2, 3 * 1024**3 + 1])
def test_rendered_sizes_parse_back(size: int) -> None:
    assert parse_size(format_size(size)) == size


def test_unknown_keys_are_named_and_hinted_as_the_file_spells_keys() -> None:
    """Options with aliases (``in``, ``range``, ``all`` in Python ``in_``, ``range_``, ``all_``):
    the hint lists the spelling a file uses, also below an aliased key."""
    from pydantic import BaseModel, ConfigDict, Field, ValidationError

    from otus._config.messages import config_error

    class Cond(BaseModel):
        model_config = ConfigDict(extra="forbid", populate_by_name=True)
        field: str | None = None
        in_: list[str] | None = Field(None, alias="in")
        range_: tuple[int, int] | None = Field(None, alias="range")
        all_: list[Cond] | None = Field(None, alias="all")

    def message(data: dict[str, object]) -> str:
        try:
            Cond.model_validate(data)
        except ValidationError as err:
            return str(config_error(err, source="", model=Cond))
        raise AssertionError("validated")

    assert message({"glob": "x"}) == "glob: unknown key (known: all, field, in, range)"
    assert message({"rnage": [1, 2]}) == "rnage: unknown key (did you mean 'range'?)"
    assert message({"all": [{"feild": "x"}]}) == (
        "all[0].feild: unknown key (did you mean 'field'?)"
    )
