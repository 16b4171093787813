"""Unit tests exercise the pure core: any test that starts Ray is a bug here."""

import pytest


@pytest.fixture(autouse=True)
def _no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("unit tests must not start Ray; move this test to integration/")

    monkeypatch.setattr(ray, "init", refuse)
