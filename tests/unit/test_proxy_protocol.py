"""PROXY protocol v1/v2: encoding, strict incremental parsing, round trips."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rota.proxy_protocol import (
    V1_MAX_LENGTH,
    V2_SIGNATURE,
    Command,
    Family,
    ProxyHeader,
    ProxyProtocolError,
    Transport,
    encode,
    encode_v1,
    encode_v2,
    parse_header,
)

ports = st.integers(0, 65535)
ipv4 = st.ip_addresses(v=4).map(str)
# Mapped addresses are turned back into IPv4 by the encoder: tested on their own below.
ipv6 = st.ip_addresses(v=6).filter(lambda a: a.ipv4_mapped is None).map(str)
pairs = st.one_of(
    st.tuples(st.tuples(ipv4, ports), st.tuples(ipv4, ports)),
    st.tuples(st.tuples(ipv6, ports), st.tuples(ipv6, ports)),
)


def parse_in_chunks(data: bytes, sizes: list[int]) -> tuple[ProxyHeader, int]:
    """Feed `data` as a receiver would see it arrive, chunk by chunk."""
    seen = b""
    rest = data
    for size in [*sizes, len(data)]:
        chunk, rest = rest[: max(size, 1)], rest[max(size, 1) :]
        seen += chunk
        result = parse_header(seen)
        if result is not None:
            return result
    raise AssertionError("never complete")


# -- version 1 --------------------------------------------------------------------------


def test_v1_example_from_the_spec() -> None:
    line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
    result = parse_header(line + b"GET / HTTP/1.1\r\n")
    assert result is not None
    header, used = result
    assert used == len(line)
    assert header == ProxyHeader(
        1,
        Command.PROXY,
        Family.INET,
        Transport.STREAM,
        ("192.168.0.1", 56324),
        ("192.168.0.11", 443),
    )


def test_v1_encode_ipv4_and_ipv6() -> None:
    assert encode_v1(("10.0.0.1", 1234), ("10.0.0.2", 80)) == (
        b"PROXY TCP4 10.0.0.1 10.0.0.2 1234 80\r\n"
    )
    assert encode_v1(("::1", 5), ("fe80::2", 6)) == b"PROXY TCP6 ::1 fe80::2 5 6\r\n"


def test_v1_unknown_when_families_differ_or_missing() -> None:
    assert encode_v1(("10.0.0.1", 1), ("::1", 2)) == b"PROXY UNKNOWN\r\n"
    assert encode_v1(None, None) == b"PROXY UNKNOWN\r\n"


def test_v1_mapped_ipv4_goes_out_as_ipv4() -> None:
    assert encode_v1(("::ffff:10.1.2.3", 9), ("::ffff:10.0.0.1", 80)) == (
        b"PROXY TCP4 10.1.2.3 10.0.0.1 9 80\r\n"
    )


def test_v1_mapped_ipv6_against_real_ipv6_is_hex_only() -> None:
    line = encode_v1(("::ffff:10.1.2.3", 9), ("2001:db8::1", 80))
    assert b"." not in line
    result = parse_header(line)
    assert result is not None
    assert result[0].source == (str(ipaddress.ip_address("::ffff:10.1.2.3")), 9)


def test_v1_unknown_ignores_the_rest_of_the_line() -> None:
    line = b"PROXY UNKNOWN ffff:f::f ffff:f::f 65535 65535\r\n"
    result = parse_header(line + b"x")
    assert result is not None
    header, used = result
    assert used == len(line)
    assert header.family is Family.UNSPEC
    assert header.source is None and not header.has_addresses


def test_v1_worst_case_length_is_accepted() -> None:
    six = ":".join(["ffff"] * 8)
    line = f"PROXY UNKNOWN {six} {six} 65535 65535\r\n".encode()
    assert len(line) == V1_MAX_LENGTH
    assert parse_header(line) is not None


def test_v1_over_long_line_is_rejected_without_waiting_for_more() -> None:
    with pytest.raises(ProxyProtocolError, match="longer"):
        parse_header(b"PROXY UNKNOWN " + b"a" * 200)
    assert parse_header(b"PROXY UNKNOWN " + b"a" * (V1_MAX_LENGTH - 15)) is None


@pytest.mark.parametrize(
    "line",
    [
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",  # bare LF
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rx\r\n",  # bare CR
        b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",  # leading zero in address
        b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",  # leading zero in port
        b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",  # port range
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",  # missing field
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",  # extra field
        b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",  # two spaces
        b"PROXY TCP4 ::1 ::2 1 2\r\n",  # family mismatch
        b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n",  # dotted quad in IPv6
        b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",  # zone id
        b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 \xff 2\r\n",  # not ASCII
        b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXZ",
        b"GET / HTTP/1.1\r\n",
    ],
)
def test_v1_malformed_lines_are_rejected(line: bytes) -> None:
    with pytest.raises(ProxyProtocolError):
        parse_header(line)


def test_v1_prefixes_need_more() -> None:
    line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
    for i in range(1, len(line)):
        assert parse_header(line[:i]) is None, line[:i]


def test_empty_input_needs_more() -> None:
    assert parse_header(b"") is None


# -- version 2 --------------------------------------------------------------------------


def test_v2_ipv4_layout_matches_the_spec() -> None:
    data = encode_v2(("172.19.0.1", 42578), ("172.19.0.3", 80))
    assert data[:12] == V2_SIGNATURE
    assert data[12:16] == b"\x21\x11\x00\x0c"  # version 2 PROXY, TCP over IPv4, 12 bytes
    assert data[16:] == bytes([172, 19, 0, 1, 172, 19, 0, 3]) + struct.pack("!HH", 42578, 80)


def test_v2_ipv6_layout() -> None:
    data = encode_v2(("::1", 1), ("::2", 2))
    assert data[12:16] == b"\x21\x21\x00\x24"
    assert len(data) == 16 + 36


def test_v2_local_command_has_no_addresses() -> None:
    data = encode_v2(None, None, command=Command.LOCAL)
    assert data == V2_SIGNATURE + b"\x20\x00\x00\x00"
    result = parse_header(data + b"rest")
    assert result is not None
    header, used = result
    assert used == 16
    assert header.command is Command.LOCAL and header.source is None


def test_v2_local_skips_an_address_block_it_ignores() -> None:
    block = bytes(12)
    data = V2_SIGNATURE + b"\x20\x11\x00\x0c" + block
    result = parse_header(data + b"x")
    assert result is not None
    assert result[1] == len(data)
    assert result[0].source is None


def test_v2_unspec_family_has_no_addresses() -> None:
    data = encode_v2(("10.0.0.1", 1), ("::1", 2))
    assert data[13] == 0x00
    result = parse_header(data)
    assert result is not None
    assert result[0].command is Command.PROXY and result[0].source is None


def test_v2_tlvs_round_trip() -> None:
    tlvs = ((0x02, b"example.com"), (0x04, b""), (0xE0, b"\x00\x01"))
    data = encode_v2(("1.2.3.4", 5), ("6.7.8.9", 10), tlvs=tlvs)
    result = parse_header(data)
    assert result is not None
    assert result[0].tlvs == tlvs


def test_v2_unix_addresses() -> None:
    src = b"/tmp/a.sock".ljust(108, b"\x00")
    dst = b"/tmp/b.sock".ljust(108, b"\x00")
    data = V2_SIGNATURE + b"\x21\x31" + struct.pack("!H", 216) + src + dst
    result = parse_header(data)
    assert result is not None
    assert result[0].family is Family.UNIX
    assert result[0].source == ("/tmp/a.sock", 0)
    assert result[0].destination == ("/tmp/b.sock", 0)


@pytest.mark.parametrize(
    ("ver_cmd", "fam", "match"),
    [
        (0x11, 0x11, "version"),
        (0x31, 0x11, "version"),
        (0x22, 0x11, "command"),
        (0x2F, 0x11, "command"),
        (0x21, 0x41, "family"),
        (0x21, 0x13, "transport"),
    ],
)
def test_v2_bad_fixed_fields_are_rejected_early(ver_cmd: int, fam: int, match: str) -> None:
    head = V2_SIGNATURE + bytes([ver_cmd, fam])
    with pytest.raises(ProxyProtocolError, match=match):
        parse_header(head)  # 14 bytes: rejected before the length even arrives


def test_v2_address_block_too_short() -> None:
    data = V2_SIGNATURE + b"\x21\x11\x00\x08" + bytes(8)
    with pytest.raises(ProxyProtocolError, match="too short"):
        parse_header(data)


def test_v2_truncated_tlv_is_rejected() -> None:
    data = V2_SIGNATURE + b"\x21\x11\x00\x0f" + bytes(12) + b"\x02\x00\x05"
    with pytest.raises(ProxyProtocolError, match="TLV"):
        parse_header(data)


def test_v2_bad_signature_is_rejected_at_the_first_wrong_byte() -> None:
    with pytest.raises(ProxyProtocolError):
        parse_header(b"\r\n\r\nX")
    assert parse_header(b"\r\n\r\n\x00") is None


def test_v2_prefixes_need_more() -> None:
    data = encode_v2(("1.2.3.4", 5), ("6.7.8.9", 10))
    for i in range(1, len(data)):
        assert parse_header(data[:i]) is None


def test_encode_rejects_unknown_version() -> None:
    with pytest.raises(ValueError):
        encode(3, ("1.2.3.4", 1), ("1.2.3.4", 2))


# -- properties -------------------------------------------------------------------------


@given(pairs, st.sampled_from([1, 2]), st.binary(max_size=64), st.lists(st.integers(1, 40)))
def test_round_trip_any_split(
    pair: tuple[tuple[str, int], tuple[str, int]], version: int, tail: bytes, sizes: list[int]
) -> None:
    source, destination = pair
    data = encode(version, source, destination)
    header, used = parse_in_chunks(data + tail, sizes)
    assert used == len(data)
    assert header.version == version
    assert header.command is Command.PROXY
    assert header.source == (str(ipaddress.ip_address(source[0])), source[1])
    assert header.destination == (str(ipaddress.ip_address(destination[0])), destination[1])


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    try:
        result = parse_header(data)
    except ProxyProtocolError:
        return
    if result is not None:
        assert 0 < result[1] <= len(data)


@given(pairs, st.sampled_from([1, 2]), st.integers(0, 200), st.integers(0, 255))
def test_any_corrupted_byte_is_rejected_or_parsed_consistently(
    pair: tuple[tuple[str, int], tuple[str, int]], version: int, where: int, value: int
) -> None:
    data = bytearray(encode(version, *pair))
    data[where % len(data)] = value
    try:
        result = parse_header(bytes(data))
    except ProxyProtocolError:
        return
    if result is not None:
        assert result[1] <= len(data)
