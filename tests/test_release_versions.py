"""Release versions order as pip orders them: a speaker never calls an older release newer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from releases.versions import is_version, newer, version_key

ASCENDING = [
    "0.1.0.dev1",
    "0.1.0a1",
    "0.1.0b2",
    "0.1.0rc1",
    "0.1.0",
    "0.1.0+local.1",
    "0.1.0.post1",
    "0.1.1",
    "0.2",
    "0.10.0",
    "1.0.0",
]


def test_the_forms_legato_uses_sort_as_pep_440_says() -> None:
    assert sorted(ASCENDING, key=version_key) == ASCENDING
    assert newer("0.10.0", "0.9.9")  # numbers, not text
    assert not newer("1.0", "1.0.0")  # the same release
    assert version_key("1.0") == version_key("1.0.0")


@pytest.mark.parametrize(
    "text", ["", "v1.0", "1.0-beta", "../1.0", "1.0/..", "1.0 ", "1.0\n", "a.b", "1" * 65]
)
def test_anything_else_is_not_a_version(text: str) -> None:
    """A slot directory is named by a version: nothing that is not one may become a path."""
    assert not is_version(text)
    with pytest.raises(ValueError, match="not a release version"):
        version_key(text)


releases = st.tuples(*(st.integers(0, 40) for _ in range(3))).map(lambda t: ".".join(map(str, t)))


@given(releases, releases)
def test_order_of_plain_releases_is_the_order_of_their_numbers(a: str, b: str) -> None:
    as_numbers = tuple(map(int, a.split("."))), tuple(map(int, b.split(".")))
    assert newer(a, b) == (as_numbers[0] > as_numbers[1])


@given(releases, st.sampled_from(["a1", "b1", "rc1", ".dev3"]))
def test_a_pre_release_comes_before_its_release(release: str, suffix: str) -> None:
    assert newer(release, release + suffix)
    assert newer(release + ".post1", release)
