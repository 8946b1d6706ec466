"""A bounded fuzz campaign in the suite; ``python -m tests.fuzz`` runs long ones."""

from __future__ import annotations

from tests.fuzzing import fuzz


def test_fuzz_campaign_has_no_unclean_outcome() -> None:
    report = fuzz.run(cases=3000, seed=2026)
    assert report.failures == []
    assert report.outcomes["clean"] > 0
    assert report.outcomes["identical"] > 0
    assert report.slowest_s < 5.0
