"""docs/diagnosis.md states every rule and the value of every threshold the code uses, so the
page cannot drift from ``core.diagnosis.rules``."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.diagnosis import RULES, rules

PAGE = (Path(__file__).resolve().parents[3] / "docs" / "diagnosis.md").read_text()

# each constant as the page writes it
THRESHOLDS = {
    "DIVERGE_EPOCHS": "**3** consecutive", "DIVERGE_MIN_RISE": "**10%**", "GRAD_GROWTH": "**1.5**×",
    "OSCILLATION_EPOCHS": "**4** consecutive", "OSCILLATION_MIN_SWING": "**2%**", "HIGH_UPDATE_RATIO": "**1e-2**",
    "PLATEAU_EPOCHS": "**5** consecutive", "PLATEAU_CHANGE": "**0.1%**", "LOW_UPDATE_RATIO": "**1e-4**",
    "LOW_UPDATE_EPOCHS": "**3** consecutive", "OVERFIT_EPOCHS": "**3** consecutive", "DEAD_LR_FRACTION": "**1e-6**",
    "LARGE_LR_FRACTION": "**0.5**",
}


def _as_written(name: str) -> str:
    value = getattr(rules, name)
    text = THRESHOLDS[name]
    number = text.split("**")[1]
    if number.endswith("%"):
        assert float(number[:-1]) / 100 == pytest.approx(value), name
    else:
        assert float(number) == value, name
    return text


@pytest.mark.parametrize("name", sorted(THRESHOLDS))
def test_every_threshold_is_on_the_page_with_its_value(name):
    assert _as_written(name) in PAGE


def test_every_threshold_constant_is_listed():
    constants = {n for n in vars(rules) if n.isupper() and isinstance(getattr(rules, n), (int, float))}
    assert constants == set(THRESHOLDS)


@pytest.mark.parametrize("rule", RULES)
def test_every_rule_has_a_row(rule):
    assert f"| `{rule}` |" in PAGE
