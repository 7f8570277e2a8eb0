"""The quadrature decoder and the interrupt's edge ring.

Plain-assert cases run by pytest under CPython and by runner.py under MicroPython.
"""

import encoder


def walk(start: int, steps: int) -> list[int]:
    """The states visited turning ``steps`` transitions (signed) from ``start``."""
    order = [0, 1, 3, 2]
    index = order.index(start)
    states = []
    direction = 1 if steps > 0 else -1
    for _ in range(abs(steps)):
        index = (index + direction) % 4
        states.append(order[index])
    return states


def test_four_transitions_forward_make_one_detent() -> None:
    decoder = encoder.QuadratureDecoder()
    assert walk(3, 4) == [2, 0, 1, 3]
    assert [decoder.step(s) for s in walk(3, 4)] == [0, 0, 0, 1]


def test_four_transitions_backward_make_minus_one() -> None:
    decoder = encoder.QuadratureDecoder()
    assert decoder.feed(walk(3, -4)) == -1
    assert decoder.feed(walk(3, -12)) == -3


def test_reverse_flips_the_direction() -> None:
    decoder = encoder.QuadratureDecoder(reverse=True)
    assert decoder.feed(walk(3, 8)) == -2


def test_a_half_turn_that_comes_back_is_no_detent() -> None:
    decoder = encoder.QuadratureDecoder()
    assert decoder.feed(walk(3, 2) + walk(0, -2)) == 0


def test_contact_bounce_cancels_out() -> None:
    decoder = encoder.QuadratureDecoder()
    # forward with contact B chattering on every transition
    states = [2, 3, 2, 0, 2, 0, 1, 0, 1, 3, 1, 3]
    assert decoder.feed(states) == 1
    assert decoder.invalid == 0


def test_a_jump_of_both_contacts_is_counted_and_drops_its_detent() -> None:
    decoder = encoder.QuadratureDecoder()
    # forward, with the 2 -> 0 transition lost (2 -> 1 seen)
    assert decoder.feed([2, 1, 3]) == 0
    assert decoder.invalid == 1
    # a blip of contact A at rest, then a lost sample: dropped, not reversed
    assert decoder.feed([1, 3, 1, 2, 3]) == 0
    # the next clean detent counts again
    assert decoder.feed(walk(3, 4)) == 1


def test_a_rest_state_other_than_three() -> None:
    decoder = encoder.QuadratureDecoder(rest_state=0)
    decoder.reset(0)
    assert decoder.feed(walk(0, 8)) == 2


def test_the_edge_ring_hands_states_to_the_decoder_in_order() -> None:
    ring = encoder.EdgeRing(8)
    decoder = encoder.QuadratureDecoder()
    seen: list[int] = []
    for state in walk(3, 4) + walk(3, -4):
        ring.record(state)
    assert ring.drain(decoder, seen.append) == 0
    assert seen == [1, -1]
    assert ring.drain(decoder) == 0


def test_the_edge_ring_counts_an_overflow_and_keeps_the_newest_states() -> None:
    ring = encoder.EdgeRing(8)
    decoder = encoder.QuadratureDecoder()
    for state in walk(3, 16):
        ring.record(state)
    assert ring.drain(decoder) == 2
    assert ring.overflows == 1


def test_the_edge_ring_indices_wrap() -> None:
    ring = encoder.EdgeRing(4)
    decoder = encoder.QuadratureDecoder()
    total = 0
    for _ in range(2000):
        for state in walk(3, 4):
            ring.record(state)
        total += ring.drain(decoder)
    assert total == 2000
    assert ring.overflows == 0
