"""A group's rules as pure decisions: who leads, what its volume reads and becomes, who
may be a member."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hub.errors import GroupConflict, GroupError, GroupNotFound
from hub.groups.rules import (
    MAX_MEMBERS,
    choose_leader,
    group_volume,
    membership_refusal,
    name_refusal,
    scaled_volumes,
)

ids = st.lists(st.sampled_from("abcdefgh"), min_size=0, max_size=8, unique=True)
volumes = st.lists(st.integers(0, 100), min_size=1, max_size=MAX_MEMBERS)


@given(ids, st.sets(st.sampled_from("abcdefgh")))
def test_the_first_online_member_leads(members: list[str], online: set[str]) -> None:
    leader = choose_leader(members, online.__contains__)
    expected = [m for m in members if m in online]
    assert leader == (expected[0] if expected else None)


@given(ids, st.sets(st.sampled_from("abcdefgh")), st.sampled_from("abcdefgh"))
def test_an_online_leader_stays_where_it_is(
    members: list[str], online: set[str], current: str
) -> None:
    leader = choose_leader(members, online.__contains__, current)
    if current in members and current in online:
        assert leader == current
    else:
        assert leader == choose_leader(members, online.__contains__)


def test_a_leader_that_came_back_follows_the_one_that_took_over() -> None:
    online = {"b"}
    assert choose_leader(["a", "b", "c"], online.__contains__) == "b"
    online.add("a")
    assert choose_leader(["a", "b", "c"], online.__contains__, "b") == "b"


@given(volumes, st.integers(0, 100))
def test_scaling_stays_in_bounds_and_keeps_the_members_order(
    given_volumes: list[int], new: int
) -> None:
    scaled = scaled_volumes(given_volumes, new)
    assert len(scaled) == len(given_volumes)
    assert all(0 <= v <= 100 for v in scaled)
    for i in range(len(given_volumes)):
        for j in range(len(given_volumes)):
            if given_volumes[i] <= given_volumes[j]:
                assert scaled[i] <= scaled[j]


@given(volumes)
def test_setting_the_group_to_its_own_volume_changes_little(given_volumes: list[int]) -> None:
    mean = sum(given_volumes) / len(given_volumes)
    if mean == 0:
        return
    exact = [v * round(mean) / mean for v in given_volumes]
    got = scaled_volumes(given_volumes, round(mean))
    assert all(abs(g - min(100.0, e)) <= 0.5 for g, e in zip(got, exact, strict=True))


def test_scaling_is_relative_and_silence_goes_to_the_new_volume() -> None:
    assert scaled_volumes([20, 40], 60) == [40, 80]
    assert scaled_volumes([50, 90], 100) == [71, 100]  # the loud one clamps
    assert scaled_volumes([0, 0, 0], 35) == [35, 35, 35]
    assert scaled_volumes([0, 40], 40) == [0, 80]
    assert group_volume([20, 40, 61]) == 40
    assert group_volume([]) == 0


def test_names_are_one_to_sixty_four_characters() -> None:
    assert name_refusal("Downstairs") is None
    assert name_refusal("x" * 64) is None
    assert isinstance(name_refusal(""), GroupError)
    assert isinstance(name_refusal("   "), GroupError)
    assert isinstance(name_refusal("x" * 65), GroupError)
    assert isinstance(name_refusal(None), GroupError)


KNOWN = {"a": True, "b": True, "c": True, "off": False}


@given(st.lists(st.sampled_from([*sorted(KNOWN), "ghost"]), max_size=20))
def test_membership_refusals_are_the_right_kind(device_ids: list[str]) -> None:
    refusal = membership_refusal(device_ids, known=KNOWN, group_of={"c": "other"})
    if not 2 <= len(device_ids) <= MAX_MEMBERS or len(set(device_ids)) != len(device_ids):
        assert type(refusal) is GroupError
    elif "ghost" in device_ids:
        assert isinstance(refusal, GroupNotFound)
    elif "c" in device_ids or "off" in device_ids:
        assert isinstance(refusal, GroupConflict)
    else:
        assert refusal is None


def test_a_member_that_dropped_out_may_stay_but_none_joins_offline() -> None:
    known = {"a": True, "b": True, "off": False}
    current = ("a", "off")
    stays = membership_refusal(
        ["a", "off", "b"],
        known=known,
        group_of={"a": "g", "off": "g"},
        group_id="g",
        current=current,
    )
    assert stays is None
    joins = membership_refusal(["a", "off"], known=known, group_of={}, group_id=None)
    assert isinstance(joins, GroupConflict)
    assert "offline" in str(joins)
    taken = membership_refusal(["a", "b"], known=known, group_of={"b": "h"}, group_id="g")
    assert isinstance(taken, GroupConflict)
    assert "another group" in str(taken)
    too_many = membership_refusal([f"s{i}" for i in range(17)], known={}, group_of={})
    assert type(too_many) is GroupError
