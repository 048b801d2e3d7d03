"""The relay's channel table (proto.nat.relay.RelayTable, protocol.md §11.1-§11.2).

A supernode forwards a caller's session packets to one of its NAT clients and back, swapping
channel numbers and never touching the session packet. Everything that arrives from the wrong
side, on an unknown or idle channel, for a client that went away, or over a channel's rate is
dropped and counted; quotas answer FULL. The property test at the end drives random sequences
of opens, forwards, moves and time steps: nothing raises and nothing is ever sent anywhere but
the two sides of a channel.
"""

from dataclasses import dataclass, field

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from peerline.proto.nat.relay import (
    RelayConfig,
    RelayTable,
    is_relayed,
    relay_of,
    relayed_addr,
)
from peerline.sim.rng import SeededRng
from peerline.types import Addr
from peerline.wire.overlay import RelayStatus
from peerline.wire.relay import pull_relayed, push_relayed
from peerline.wire.spec import TYPE_HANDSHAKE_INITIATION, TYPE_TRANSPORT

CALLER = b"\xca" * 32
TARGET = b"\x7a" * 32
CALLER_ADDR: Addr = ("198.51.100.10", 40001)
CALLER_MOVED: Addr = ("198.51.100.10", 40999)
TARGET_ADDR: Addr = ("203.0.113.20", 50002)
STRANGER: Addr = ("192.0.2.66", 6666)
INNER = bytes([TYPE_TRANSPORT]) + bytes(range(1, 60))
INNER_BACK = bytes([TYPE_TRANSPORT]) + bytes(range(100, 160))


@dataclass
class Relay:
    """A RelayTable and the client map behind its ``client_addr`` (mutable by tests)."""

    table: RelayTable
    clients: dict[bytes, Addr] = field(default_factory=dict)


def make_relay(config: RelayConfig | None = None, *, seed: int = 1) -> Relay:
    clients: dict[bytes, Addr] = {TARGET: TARGET_ADDR}

    def client_addr(key: bytes, now: float) -> Addr | None:
        return clients.get(key)

    table = RelayTable(rng=SeededRng(seed), client_addr=client_addr, config=config)
    return Relay(table=table, clients=clients)


def opened(relay: Relay, *, now: float = 0.0) -> tuple[int, int]:
    """Open CALLER -> TARGET and push one packet through: (caller channel, target channel)."""
    status, caller_channel = relay.table.open(CALLER, CALLER_ADDR, TARGET, now)
    assert status is RelayStatus.OPENED
    out = relay.table.forward(push_relayed(caller_channel, INNER), CALLER_ADDR, now)
    assert out is not None
    target_channel, _ = pull_relayed(out[0])
    return caller_channel, target_channel


# -- relayed addresses ------------------------------------------------------------------------
@pytest.mark.parametrize("relay", [("203.0.113.1", 4720), ("2001:db8::1", 443)])
@pytest.mark.parametrize("channel", [0, 1, 0xDEADBEEF, 0xFFFFFFFF])
def test_relayed_addresses_round_trip(relay: Addr, channel: int) -> None:
    addr = relayed_addr(relay, channel)
    assert is_relayed(addr)
    assert relay_of(addr) == (relay, channel)
    assert not is_relayed(relay) and relay_of(relay) is None


# -- open ---------------------------------------------------------------------------------------
def test_open_returns_a_channel() -> None:
    relay = make_relay()
    status, channel = relay.table.open(CALLER, CALLER_ADDR, TARGET, 0.0)
    assert status is RelayStatus.OPENED
    assert 0 < channel <= 0xFFFFFFFF
    assert len(relay.table) == 1
    assert relay.table.counters.channels_opened == 1


def test_open_again_is_idempotent_and_moves_the_caller_side() -> None:
    relay = make_relay()
    caller_channel, target_channel = opened(relay)
    status, again = relay.table.open(CALLER, CALLER_MOVED, TARGET, 1.0)
    assert (status, again) == (RelayStatus.OPENED, caller_channel)
    assert len(relay.table) == 1 and relay.table.counters.channels_opened == 1
    # The old address is no longer the caller's side; the new one is, both ways.
    assert relay.table.forward(push_relayed(caller_channel, INNER), CALLER_ADDR, 1.1) is None
    assert relay.table.counters.dropped_wrong_source == 1
    out = relay.table.forward(push_relayed(caller_channel, INNER), CALLER_MOVED, 1.2)
    assert out == (push_relayed(target_channel, INNER), TARGET_ADDR)
    back = relay.table.forward(push_relayed(target_channel, INNER_BACK), TARGET_ADDR, 1.3)
    assert back == (push_relayed(caller_channel, INNER_BACK), CALLER_MOVED)


def test_two_callers_to_one_target_get_separate_channels() -> None:
    relay = make_relay()
    other = b"\x0c" * 32
    _, one = relay.table.open(CALLER, CALLER_ADDR, TARGET, 0.0)
    _, two = relay.table.open(other, STRANGER, TARGET, 0.0)
    assert one != two and len(relay.table) == 2
    out_one = relay.table.forward(push_relayed(one, INNER), CALLER_ADDR, 0.1)
    out_two = relay.table.forward(push_relayed(two, INNER), STRANGER, 0.1)
    assert out_one is not None and out_two is not None
    assert pull_relayed(out_one[0])[0] != pull_relayed(out_two[0])[0]


# -- forwarding ---------------------------------------------------------------------------------
def test_forwarding_swaps_channel_numbers_both_ways_and_keeps_the_inner_bytes() -> None:
    relay = make_relay()
    _, caller_channel = relay.table.open(CALLER, CALLER_ADDR, TARGET, 0.0)
    out = relay.table.forward(push_relayed(caller_channel, INNER), CALLER_ADDR, 0.1)
    assert out is not None
    data, to = out
    target_channel, inner = pull_relayed(data)
    assert to == TARGET_ADDR
    assert inner == INNER
    assert target_channel not in (0, caller_channel)
    back = relay.table.forward(push_relayed(target_channel, INNER_BACK), TARGET_ADDR, 0.2)
    assert back == (push_relayed(caller_channel, INNER_BACK), CALLER_ADDR)
    c = relay.table.counters
    assert c.packets_forwarded == 2
    assert c.bytes_forwarded == len(data) + len(back[0])


def test_handshake_packets_are_forwarded_as_they_are() -> None:
    relay = make_relay()
    caller_channel, target_channel = opened(relay)
    initiation = bytes([TYPE_HANDSHAKE_INITIATION]) + bytes(147)
    out = relay.table.forward(push_relayed(caller_channel, initiation), CALLER_ADDR, 0.5)
    assert out == (push_relayed(target_channel, initiation), TARGET_ADDR)


def test_forwarding_follows_the_target_when_it_moves_behind_its_nat() -> None:
    relay = make_relay()
    caller_channel, target_channel = opened(relay)
    moved: Addr = ("203.0.113.20", 50999)
    relay.clients[TARGET] = moved  # it pinged the relay from a new mapping
    out = relay.table.forward(push_relayed(caller_channel, INNER), CALLER_ADDR, 1.0)
    assert out is not None and out[1] == moved
    assert relay.table.forward(push_relayed(target_channel, INNER), TARGET_ADDR, 1.1) is None
    assert relay.table.counters.dropped_wrong_source == 1
    assert relay.table.forward(push_relayed(target_channel, INNER), moved, 1.2) is not None


@pytest.mark.parametrize("side", ["caller", "target"])
def test_wrong_source_is_dropped_and_counted(side: str) -> None:
    relay = make_relay()
    caller_channel, target_channel = opened(relay)
    forwarded = relay.table.counters.packets_forwarded
    number = caller_channel if side == "caller" else target_channel
    for source in (STRANGER, TARGET_ADDR if side == "caller" else CALLER_ADDR):
        assert relay.table.forward(push_relayed(number, INNER), source, 0.5) is None
    assert relay.table.counters.dropped_wrong_source == 2
    assert relay.table.counters.packets_forwarded == forwarded


def test_unknown_channel_is_dropped_and_counted() -> None:
    relay = make_relay()
    caller_channel, target_channel = opened(relay)
    unknown = next(n for n in range(1, 10) if n not in (caller_channel, target_channel))
    assert relay.table.forward(push_relayed(unknown, INNER), CALLER_ADDR, 0.5) is None
    assert relay.table.forward(push_relayed(0, INNER), CALLER_ADDR, 0.5) is None
    assert relay.table.counters.dropped_unknown_channel == 2


@pytest.mark.parametrize(
    "data",
    [b"", b"\x55", b"\x55\x01\x00\x00\x00\x01", b"\x55\x01\x00\x00\x00\x01\x54overlay", b"\x53"],
)
def test_malformed_is_dropped_and_counted(data: bytes) -> None:
    relay = make_relay()
    opened(relay)
    assert relay.table.forward(data, CALLER_ADDR, 0.5) is None
    assert relay.table.counters.dropped_malformed == 1


def test_target_gone_is_dropped_and_counted() -> None:
    relay = make_relay()
    caller_channel, target_channel = opened(relay)
    del relay.clients[TARGET]  # it stopped pinging: client_addr says None
    assert relay.table.forward(push_relayed(caller_channel, INNER), CALLER_ADDR, 1.0) is None
    assert relay.table.counters.dropped_no_client == 1
    # Nothing from the old target address is taken as the target any more.
    assert relay.table.forward(push_relayed(target_channel, INNER), TARGET_ADDR, 1.0) is None
    assert relay.table.counters.dropped_wrong_source == 1
    relay.clients[TARGET] = TARGET_ADDR  # back again
    assert relay.table.forward(push_relayed(caller_channel, INNER), CALLER_ADDR, 2.0) is not None


# -- rate limits --------------------------------------------------------------------------------
def test_packet_rate_is_limited_per_channel_and_direction_and_refills_with_time() -> None:
    relay = make_relay(RelayConfig(packets_per_s=5.0, bytes_per_s=1e9))
    _, caller_channel = relay.table.open(CALLER, CALLER_ADDR, TARGET, 0.0)
    data = push_relayed(caller_channel, INNER)
    results = [relay.table.forward(data, CALLER_ADDR, 0.0) for _ in range(7)]
    assert [r is not None for r in results] == [True] * 5 + [False] * 2
    assert relay.table.counters.dropped_rate_limited == 2
    # The other direction has its own bucket.
    first = results[0]
    assert first is not None
    target_channel, _ = pull_relayed(first[0])
    back = push_relayed(target_channel, INNER_BACK)
    assert relay.table.forward(back, TARGET_ADDR, 0.0) is not None
    # 0.2 s at 5/s refills exactly one packet; 0.1 s more refills nothing new yet.
    assert relay.table.forward(data, CALLER_ADDR, 0.2) is not None
    assert relay.table.forward(data, CALLER_ADDR, 0.2) is None
    assert relay.table.forward(data, CALLER_ADDR, 0.3) is None
    # A long pause refills to the burst size, never beyond.
    passed = sum(relay.table.forward(data, CALLER_ADDR, 50.0) is not None for _ in range(10))
    assert passed == 5


def test_byte_rate_is_limited_per_channel_and_refills_with_time() -> None:
    inner = bytes([TYPE_TRANSPORT]) + bytes(293)  # 300 bytes on the wire
    relay = make_relay(RelayConfig(packets_per_s=1000.0, bytes_per_s=1000.0))
    _, caller_channel = relay.table.open(CALLER, CALLER_ADDR, TARGET, 0.0)
    data = push_relayed(caller_channel, inner)
    assert len(data) == 300
    results = [relay.table.forward(data, CALLER_ADDR, 0.0) is not None for _ in range(4)]
    assert results == [True, True, True, False]
    # 100 bytes left: a small packet still fits, a 300-byte one needs 0.2 s more.
    small = push_relayed(caller_channel, bytes([TYPE_TRANSPORT]) + bytes(23))
    assert relay.table.forward(small, CALLER_ADDR, 0.0) is not None
    assert relay.table.forward(data, CALLER_ADDR, 0.1) is None
    assert relay.table.forward(data, CALLER_ADDR, 0.3) is not None
    assert relay.table.counters.dropped_rate_limited == 2


def test_a_packet_larger_than_the_byte_budget_never_passes() -> None:
    relay = make_relay(RelayConfig(bytes_per_s=100.0))
    _, caller_channel = relay.table.open(CALLER, CALLER_ADDR, TARGET, 0.0)
    data = push_relayed(caller_channel, bytes([TYPE_TRANSPORT]) + bytes(200))
    assert relay.table.forward(data, CALLER_ADDR, 50.0) is None
    assert relay.table.counters.dropped_rate_limited == 1


def test_default_rate_carries_a_20ms_voice_call_both_ways() -> None:
    relay = make_relay()
    caller_channel, target_channel = opened(relay)
    frame = bytes([TYPE_TRANSPORT]) + bytes(29 + 160)  # 64 kbit/s Opus frame + overhead
    now, passed = 1.0, 0
    for _ in range(500):  # 10 s
        now += 0.02
        for number, addr in ((caller_channel, CALLER_ADDR), (target_channel, TARGET_ADDR)):
            passed += relay.table.forward(push_relayed(number, frame), addr, now) is not None
    assert passed == 1000
    assert relay.table.counters.dropped_rate_limited == 0


# -- idle expiry --------------------------------------------------------------------------------
def test_idle_channel_expires_and_traffic_keeps_it_open() -> None:
    relay = make_relay(RelayConfig(idle_s=10.0))
    caller_channel, target_channel = opened(relay, now=0.0)
    # Traffic either way keeps it open well past idle_s.
    now = 0.0
    for i in range(5):
        now += 9.0
        number, addr = (caller_channel, CALLER_ADDR) if i % 2 else (target_channel, TARGET_ADDR)
        assert relay.table.forward(push_relayed(number, INNER), addr, now) is not None
    # Then silence: idle_s later the channel is gone, even before anything expires it.
    now += 10.0
    assert relay.table.forward(push_relayed(caller_channel, INNER), CALLER_ADDR, now) is None
    assert relay.table.counters.dropped_unknown_channel == 1
    relay.table.expire(now)
    assert len(relay.table) == 0
    assert relay.table.counters.channels_expired == 1
    assert relay.table.forward(push_relayed(target_channel, INNER), TARGET_ADDR, now) is None
    assert relay.table.counters.dropped_unknown_channel == 2


def test_open_refreshes_an_idle_channel_and_a_reopen_after_expiry_is_a_new_channel() -> None:
    relay = make_relay(RelayConfig(idle_s=10.0))
    _, first = relay.table.open(CALLER, CALLER_ADDR, TARGET, 0.0)
    assert relay.table.open(CALLER, CALLER_ADDR, TARGET, 9.0) == (RelayStatus.OPENED, first)
    assert relay.table.forward(push_relayed(first, INNER), CALLER_ADDR, 18.0) is not None
    status, second = relay.table.open(CALLER, CALLER_ADDR, TARGET, 40.0)
    assert status is RelayStatus.OPENED and second != first
    assert relay.table.counters.channels_expired == 1
    assert relay.table.counters.channels_opened == 2
    assert relay.table.forward(push_relayed(first, INNER), CALLER_ADDR, 40.0) is None


# -- quotas -------------------------------------------------------------------------------------
def test_max_channels_answers_full_until_one_expires() -> None:
    relay = make_relay(RelayConfig(max_channels=2, idle_s=10.0))
    callers = [bytes([i]) * 32 for i in (1, 2, 3)]
    assert relay.table.open(callers[0], CALLER_ADDR, TARGET, 0.0)[0] is RelayStatus.OPENED
    assert relay.table.open(callers[1], STRANGER, TARGET, 5.0)[0] is RelayStatus.OPENED
    assert relay.table.open(callers[2], CALLER_MOVED, TARGET, 5.0) == (RelayStatus.FULL, 0)
    assert relay.table.counters.channels_refused == 1
    # Refreshing an open channel is not a new one: never FULL.
    assert relay.table.open(callers[0], CALLER_ADDR, TARGET, 6.0)[0] is RelayStatus.OPENED
    # The first channel (refreshed at 6.0) outlives the second; once that goes, there is room.
    assert relay.table.open(callers[2], CALLER_MOVED, TARGET, 15.5)[0] is RelayStatus.OPENED
    assert len(relay.table) == 2


def test_a_relay_with_max_channels_zero_refuses_everything() -> None:
    relay = make_relay(RelayConfig(max_channels=0))
    assert relay.table.open(CALLER, CALLER_ADDR, TARGET, 0.0) == (RelayStatus.FULL, 0)
    assert len(relay.table) == 0


def test_per_caller_quota_answers_full_and_leaves_room_for_others() -> None:
    relay = make_relay(RelayConfig(max_channels_per_caller=2))
    targets = [bytes([0x40 + i]) * 32 for i in range(3)]
    for t in targets:
        relay.clients[t] = TARGET_ADDR
    assert relay.table.open(CALLER, CALLER_ADDR, targets[0], 0.0)[0] is RelayStatus.OPENED
    assert relay.table.open(CALLER, CALLER_ADDR, targets[1], 0.0)[0] is RelayStatus.OPENED
    assert relay.table.open(CALLER, CALLER_ADDR, targets[2], 0.0) == (RelayStatus.FULL, 0)
    other = b"\x0c" * 32
    assert relay.table.open(other, STRANGER, targets[2], 0.0)[0] is RelayStatus.OPENED
    assert relay.table.counters.channels_refused == 1


@pytest.mark.parametrize(
    "kwargs", [{"max_channels": -1}, {"max_channels_per_caller": 0}, {"idle_s": 0.0}]
)
def test_config_bounds(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RelayConfig(**kwargs)  # type: ignore[arg-type]


# -- property: nothing raises, nothing goes anywhere but the two sides --------------------------
KEYS = [bytes([0x10 + i]) * 32 for i in range(3)]
ADDRS: list[Addr] = [("198.51.100.1", 1000 + i) for i in range(4)] + [STRANGER]

Op = tuple[object, ...]
open_st: st.SearchStrategy[Op] = st.tuples(
    st.just("open"),
    st.sampled_from(range(len(KEYS))),
    st.sampled_from(range(len(ADDRS))),
    st.sampled_from(range(len(KEYS))),
)
forward_st: st.SearchStrategy[Op] = st.tuples(
    st.just("forward"),
    st.integers(0, 5),  # a channel seen so far (5: a made-up number)
    st.sampled_from([-1, -1, *range(len(ADDRS))]),  # -1: the side this channel expects
    st.binary(max_size=40),
)
wait_st: st.SearchStrategy[Op] = st.tuples(
    st.just("wait"), st.sampled_from([0.0, 0.05, 0.3, 1.0, 5.0, 25.0]), st.just(0), st.just(0)
)
client_st: st.SearchStrategy[Op] = st.tuples(
    st.just("client"),
    st.sampled_from(range(len(KEYS))),
    st.sampled_from([*range(len(ADDRS)), -1]),  # -1: the client went away
    st.just(0),
)
raw_st: st.SearchStrategy[Op] = st.tuples(
    st.just("raw"), st.binary(max_size=20), st.sampled_from(range(len(ADDRS))), st.just(0)
)
OP_MIX = (open_st, forward_st, forward_st, forward_st, forward_st, wait_st, client_st, raw_st)
op_st = st.integers(0, len(OP_MIX) - 1).flatmap(OP_MIX.__getitem__)


@dataclass
class _Pair:
    caller: bytes
    target: bytes
    caller_addr: Addr
    caller_channel: int
    target_channel: int | None = None


@settings(max_examples=300)
@given(st.lists(open_st, min_size=1, max_size=3), st.lists(op_st, max_size=60), st.integers(0, 99))
def test_random_operations_never_raise_or_forward_anywhere_but_the_two_sides(
    opens: list[Op], more: list[Op], seed: int
) -> None:
    ops = opens + more
    clients: dict[bytes, Addr] = {k: ADDRS[i] for i, k in enumerate(KEYS)}

    def client_addr(key: bytes, now: float) -> Addr | None:
        return clients.get(key)

    config = RelayConfig(max_channels=4, max_channels_per_caller=2, idle_s=20.0, packets_per_s=3)
    table = RelayTable(rng=SeededRng(seed), client_addr=client_addr, config=config)
    pairs: dict[tuple[bytes, bytes], _Pair] = {}
    numbers: list[int] = []
    now = 0.0
    forwarded = 0

    def expected_source(number: int) -> Addr:
        for p in pairs.values():
            if p.caller_channel == number:
                return p.caller_addr
            if p.target_channel == number:
                return clients.get(p.target, STRANGER)
        return STRANGER

    for op in ops:
        name = op[0]
        if name == "open":
            _, ci, ai, ti = op
            assert isinstance(ci, int) and isinstance(ai, int) and isinstance(ti, int)
            caller, target = KEYS[ci], KEYS[ti]
            status, channel = table.open(caller, ADDRS[ai], target, now)
            if status is RelayStatus.OPENED:
                pair = pairs.get((caller, target))
                if pair is None or pair.caller_channel != channel:
                    pair = pairs[(caller, target)] = _Pair(caller, target, ADDRS[ai], channel)
                pair.caller_addr = ADDRS[ai]
                if channel not in numbers:
                    numbers.append(channel)
            else:
                assert (status, channel) == (RelayStatus.FULL, 0)
            assert len(table) <= config.max_channels
        elif name in ("forward", "raw"):
            if name == "forward":
                _, index, ai, body = op
                assert isinstance(index, int) and isinstance(body, bytes)
                made_up = index == 5 or not numbers
                number = 0x5EED0000 + index if made_up else numbers[index % len(numbers)]
                inner = bytes([TYPE_TRANSPORT]) + body
                data = push_relayed(number, inner)
            else:
                _, raw, ai, _ = op
                assert isinstance(raw, bytes)
                data = raw
            assert isinstance(ai, int)
            source = ADDRS[ai] if ai >= 0 else expected_source(pull_relayed(data)[0])
            out = table.forward(data, source, now)
            if out is None:
                continue
            forwarded += 1
            in_number, inner = pull_relayed(data)
            out_number, out_inner = pull_relayed(out[0])
            assert out_inner == inner
            by_caller = [p for p in pairs.values() if p.caller_channel == in_number]
            by_target = [p for p in pairs.values() if p.target_channel == in_number]
            if by_caller:
                (pair,) = by_caller
                assert source == pair.caller_addr
                assert out[1] == clients[pair.target]
                if pair.target_channel is None:
                    pair.target_channel = out_number
                    numbers.append(out_number)
                assert out_number == pair.target_channel
            else:
                # Only a target channel learned from an earlier forward can carry traffic back.
                (pair,) = by_target
                assert source == clients[pair.target]
                assert out[1] == pair.caller_addr
                assert out_number == pair.caller_channel
        elif name == "wait":
            assert isinstance(op[1], float)
            now += op[1]
            if op[1] > 2.0:
                table.expire(now)
        else:
            _, ki, ai, _ = op
            assert isinstance(ki, int) and isinstance(ai, int)
            if ai < 0:
                clients.pop(KEYS[ki], None)
            else:
                clients[KEYS[ki]] = ADDRS[ai]
    c = table.counters
    event(f"forwarded {min(forwarded, 3)}+ packets")
    assert c.packets_forwarded == forwarded
    assert c.channels_opened - c.channels_expired == len(table)
