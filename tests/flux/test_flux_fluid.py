"""FLUID generator: layout, monotonicity, seeding and sequence exhaustion (specs/jobid.md)."""
from __future__ import annotations

import errno

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flux.errors import FluxError
from flux.job.fluid import (
    FluidGenerator,
    fluid_generator_id,
    fluid_make,
    fluid_sequence,
    fluid_timestamp,
)


class FakeClock:
    """A millisecond clock that moves only when told to, or by 1ms after each
    ``stall`` reads (so a generator that busy-waits eventually sees a tick)."""

    def __init__(self, start: int = 1000, stall: int | None = None) -> None:
        self.now = start
        self.reads = 0
        self.stall = stall
        self._since_tick = 0

    def __call__(self) -> int:
        self.reads += 1
        if self.stall is not None:
            self._since_tick += 1
            if self._since_tick > self.stall:
                self.now += 1
                self._since_tick = 0
        return self.now


def test_layout_is_timestamp_generator_sequence() -> None:
    fluid = fluid_make(12345, 7, 42)
    assert fluid == (12345 << 24) | (7 << 10) | 42
    assert fluid_timestamp(fluid) == 12345
    assert fluid_generator_id(fluid) == 7
    assert fluid_sequence(fluid) == 42


@pytest.mark.parametrize("args,field", [
    ((1 << 40, 0, 0), "timestamp"),
    ((0, 1 << 14, 0), "generator_id"),
    ((0, 0, 1 << 10), "sequence"),
    ((-1, 0, 0), "timestamp"),
])
def test_fluid_make_rejects_out_of_range_fields(args: tuple[int, int, int], field: str) -> None:
    with pytest.raises(ValueError, match=f"FLUID {field}"):
        fluid_make(*args)


def test_ids_within_one_millisecond_count_the_sequence() -> None:
    clock = FakeClock()
    gen = FluidGenerator(generator_id=3, clock=clock)
    ids = [gen.next() for _ in range(5)]
    assert [fluid_sequence(i) for i in ids] == [0, 1, 2, 3, 4]
    assert {fluid_generator_id(i) for i in ids} == {3}
    assert {fluid_timestamp(i) for i in ids} == {0}
    clock.now += 2
    later = gen.next()
    assert fluid_timestamp(later) == 2 and fluid_sequence(later) == 0


def test_timestamp_counts_ms_since_creation_plus_seed() -> None:
    clock = FakeClock(start=5_000)
    gen = FluidGenerator(timestamp=100, clock=clock)
    clock.now += 25
    assert fluid_timestamp(gen.next()) == 125


def test_seeded_after_max_id_all_ids_are_larger() -> None:
    max_id = fluid_make(987654, 0, 1023)
    clock = FakeClock()
    gen = FluidGenerator.after(max_id, clock=clock)
    first = gen.next()
    assert first > max_id
    assert fluid_timestamp(first) == 987655


def test_exhausted_sequence_waits_for_next_millisecond() -> None:
    clock = FakeClock(stall=2000)  # still while 1024 ids are made
    gen = FluidGenerator(clock=clock)
    ids = [gen.next() for _ in range(1025)]
    assert ids == sorted(set(ids))
    assert clock.reads > 2000  # the generator polled the clock until it moved
    assert fluid_timestamp(ids[1023]) == fluid_timestamp(ids[0])
    assert fluid_sequence(ids[1023]) == 1023
    # the 1025th id had to wait for the clock to tick
    assert fluid_timestamp(ids[1024]) > fluid_timestamp(ids[1023])
    assert fluid_sequence(ids[1024]) == 0


def test_clock_going_backwards_never_repeats_ids() -> None:
    clock = FakeClock(start=10_000)
    gen = FluidGenerator(clock=clock)
    clock.now += 10
    a = gen.next()
    clock.now -= 5
    b = gen.next()
    assert b > a


def test_next_batch_matches_repeated_next() -> None:
    one, other = FakeClock(stall=5000), FakeClock(stall=5000)
    batch = FluidGenerator(generator_id=9, clock=one).next_batch(3000)
    gen = FluidGenerator(generator_id=9, clock=other)
    singles = [gen.next() for _ in range(3000)]
    assert batch == singles
    assert {fluid_generator_id(i) for i in batch} == {9}
    # 1024 ids in each of the first two milliseconds, the rest in the third
    assert [fluid_timestamp(batch[k]) for k in (0, 1023, 1024, 2047, 2048, 2999)] == \
        [0, 0, 1, 1, 2, 2]


def test_next_batch_edge_sizes() -> None:
    gen = FluidGenerator(clock=FakeClock(stall=1))
    assert gen.next_batch(0) == []
    with pytest.raises(ValueError, match="negative"):
        gen.next_batch(-1)


def test_iterator_protocol() -> None:
    gen = FluidGenerator(clock=FakeClock())
    a, b = next(gen), next(iter(gen))
    assert b == a + 1


def test_real_clock_gives_increasing_ids() -> None:
    gen = FluidGenerator(generator_id=1)
    ids = gen.next_batch(5000) + [gen.next() for _ in range(100)]
    assert ids == sorted(set(ids))


@pytest.mark.parametrize("kwargs,match", [
    ({"generator_id": 1 << 14}, "generator id"),
    ({"generator_id": -1}, "generator id"),
    ({"timestamp": 1 << 40}, "timestamp"),
])
def test_bad_generator_arguments(kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FluidGenerator(**kwargs)


def test_timestamp_space_exhaustion_is_eoverflow() -> None:
    clock = FakeClock()
    gen = FluidGenerator(timestamp=(1 << 40) - 1, clock=clock)
    gen.next()
    clock.now += 1
    with pytest.raises(FluxError) as info:
        gen.next()
    assert info.value.errno == errno.EOVERFLOW


@given(st.lists(st.one_of(
    st.tuples(st.just("next"), st.just(0)),
    st.tuples(st.just("batch"), st.integers(min_value=0, max_value=2500)),
    st.tuples(st.just("tick"), st.integers(min_value=-3, max_value=3)),
), max_size=40))
def test_ids_strictly_increase_under_any_interleaving(ops: list[tuple[str, int]]) -> None:
    clock = FakeClock(stall=7)
    gen = FluidGenerator(generator_id=77, clock=clock)
    last = -1
    for op, arg in ops:
        if op == "tick":
            clock.now += arg
            continue
        ids = [gen.next()] if op == "next" else gen.next_batch(arg)
        for fluid in ids:
            assert fluid > last
            assert fluid_generator_id(fluid) == 77
            last = fluid
