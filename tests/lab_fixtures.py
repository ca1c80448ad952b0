"""pytest fixtures for the namespace lab (tests/lab.py); CI runs them as root."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.lab import Lab, missing_tools


def require_lab() -> None:
    """Skip, saying exactly what is missing, where the lab cannot run."""
    if problems := missing_tools():
        pytest.skip("the namespace lab needs " + "; ".join(problems))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A paired lab for the module; removed afterwards whatever happened."""
    require_lab()
    with Lab(tmp_path_factory.mktemp("lab")) as built:
        built.up()
        yield built
