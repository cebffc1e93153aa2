"""The PROXY protocol, versions 1 (text) and 2 (binary): encoding and incremental parsing.

Pure: bytes in, values out, no sockets. The specification is HAProxy's
doc/proxy-protocol.txt; section numbers below refer to it.

A load balancer that relays TCP hides the client's address from the backend (the backend
sees rota's address). With `--send-proxy v1|v2` rota prepends one header to every backend
connection naming the real client; with `--accept-proxy` it expects such a header from a
front load balancer on every client connection and uses the address in it.

Parsing is strict, as section 2.1 asks ("any sequence which does not exactly match the
protocol must be discarded and cause the receiver to abort the connection"), and
incremental: `parse_header` takes whatever has arrived so far and answers "need more",
"here is the header and its length", or raises `ProxyProtocolError` as early as the bytes
allow, so a client that sends garbage is dropped on its first segment.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from enum import Enum

# Section 2.2: the 12-byte signature that opens every version 2 header.
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
# Section 2.1: the worst case, "PROXY UNKNOWN ffff:...:ffff ffff:...:ffff 65535 65535\r\n".
V1_MAX_LENGTH = 107
# Section 2.2: 16 fixed bytes, then a 16-bit length of addresses and TLVs.
V2_FIXED_LENGTH = 16
V2_MAX_LENGTH = V2_FIXED_LENGTH + 0xFFFF

_V2_ADDRESS_LENGTH = {1: 12, 2: 36, 3: 216}  # AF_INET, AF_INET6, AF_UNIX (section 2.2)
_UNIX_PATH = 108

Address = tuple[str, int]


class ProxyProtocolError(ValueError):
    """The peer sent something that is not a valid PROXY protocol header."""


class Command(Enum):
    # Section 2.2: LOCAL is a connection the proxy made itself (a health check): the
    # receiver uses the real endpoints. PROXY relays another connection's endpoints.
    LOCAL = 0
    PROXY = 1


class Family(Enum):
    UNSPEC = 0  # v1 "UNKNOWN"; v2 AF_UNSPEC
    INET = 1
    INET6 = 2
    UNIX = 3


class Transport(Enum):
    UNSPEC = 0
    STREAM = 1
    DGRAM = 2


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """One parsed header. `source`/`destination` are None when the header carries no usable
    address (v1 UNKNOWN, v2 LOCAL or AF_UNSPEC): the receiver then uses the connection's
    real endpoints. For AF_UNIX the "port" is 0 and the host is the socket path."""

    version: int
    command: Command
    family: Family
    transport: Transport
    source: Address | None
    destination: Address | None
    tlvs: tuple[tuple[int, bytes], ...] = ()

    @property
    def has_addresses(self) -> bool:
        return self.source is not None


# ---------------------------------------------------------------------------------------
# Encoding


def _unmapped(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _normalise_pair(source: Address, destination: Address) -> tuple[Family, Address, Address]:
    """The family both addresses share, with IPv4-mapped IPv6 (a dual-stack socket's view of
    an IPv4 peer) turned back into IPv4 when both sides are IPv4. Family.UNSPEC if the
    addresses are not both IPv4 or both IPv6."""
    src_ip = ipaddress.ip_address(source[0])
    dst_ip = ipaddress.ip_address(destination[0])
    src_v4, dst_v4 = _unmapped(src_ip), _unmapped(dst_ip)
    if src_v4.version == 4 and dst_v4.version == 4:
        src_ip, dst_ip = src_v4, dst_v4
    for port in (source[1], destination[1]):
        if not 0 <= port <= 0xFFFF:
            raise ValueError(f"port out of range: {port}")
    if src_ip.version != dst_ip.version:
        return Family.UNSPEC, source, destination
    family = Family.INET if src_ip.version == 4 else Family.INET6
    return family, (str(src_ip), source[1]), (str(dst_ip), destination[1])


def encode_v1(source: Address | None, destination: Address | None) -> bytes:
    """A version 1 line (section 2.1). Without a usable pair of addresses of one family the
    line is "PROXY UNKNOWN", which tells the receiver to use the real endpoints."""
    if source is None or destination is None:
        return b"PROXY UNKNOWN\r\n"
    family, src, dst = _normalise_pair(source, destination)
    if family is Family.UNSPEC:
        return b"PROXY UNKNOWN\r\n"
    proto = "TCP4" if family is Family.INET else "TCP6"
    src_text, dst_text = _v1_text(src[0]), _v1_text(dst[0])
    return f"PROXY {proto} {src_text} {dst_text} {src[1]} {dst[1]}\r\n".encode("ascii")


def _v1_text(host: str) -> str:
    # Python writes an IPv4-mapped IPv6 address as "::ffff:1.2.3.4"; section 2.1 wants hex
    # groups only, so such an address goes out in full.
    return ipaddress.ip_address(host).exploded if "." in host and ":" in host else host


def encode_v2(
    source: Address | None,
    destination: Address | None,
    *,
    command: Command = Command.PROXY,
    tlvs: tuple[tuple[int, bytes], ...] = (),
) -> bytes:
    """A version 2 header (section 2.2) for a TCP connection. LOCAL, or addresses that are
    missing or of different families, give AF_UNSPEC with no address block."""
    body = b"".join(struct.pack("!BH", kind, len(value)) + value for kind, value in tlvs)
    fam = 0x00
    addresses = b""
    if command is Command.PROXY and source is not None and destination is not None:
        family, src, dst = _normalise_pair(source, destination)
        if family is not Family.UNSPEC:
            fam = (family.value << 4) | Transport.STREAM.value
            addresses = (
                ipaddress.ip_address(src[0]).packed
                + ipaddress.ip_address(dst[0]).packed
                + struct.pack("!HH", src[1], dst[1])
            )
    length = len(addresses) + len(body)
    if length > 0xFFFF:
        raise ValueError("PROXY v2 header too long")
    return V2_SIGNATURE + struct.pack("!BBH", 0x20 | command.value, fam, length) + addresses + body


def encode(version: int, source: Address | None, destination: Address | None) -> bytes:
    if version == 1:
        return encode_v1(source, destination)
    if version == 2:
        return encode_v2(source, destination)
    raise ValueError(f"PROXY protocol version must be 1 or 2, got {version}")


# ---------------------------------------------------------------------------------------
# Parsing


def parse_header(data: bytes | bytearray | memoryview) -> tuple[ProxyHeader, int] | None:
    """Parse a header at the start of `data`: (header, bytes it used), or None if `data` is
    a valid beginning that needs more bytes. Raises ProxyProtocolError as soon as the bytes
    seen cannot begin a valid header."""
    data = bytes(data[:V2_MAX_LENGTH])
    if not data:
        return None
    if data[0] == V1_PREFIX[0]:
        return _parse_v1(data)
    if data[0] == V2_SIGNATURE[0]:
        return _parse_v2(data)
    raise ProxyProtocolError("not a PROXY protocol header")


def _parse_v1(data: bytes) -> tuple[ProxyHeader, int] | None:
    head = data[: len(V1_PREFIX)]
    if not V1_PREFIX.startswith(head):
        raise ProxyProtocolError("not a PROXY protocol header")
    window = data[:V1_MAX_LENGTH]
    end = window.find(b"\r\n")
    if end < 0:
        # Section 2.1: a lone CR or LF never ends the line; and the CRLF must come within
        # the first 107 bytes.
        stray = window.find(b"\n")
        cr = window.find(b"\r")
        if stray >= 0 or (0 <= cr < len(window) - 1):
            raise ProxyProtocolError("PROXY v1 line has a bare CR or LF")
        if len(window) >= V1_MAX_LENGTH:
            raise ProxyProtocolError(f"PROXY v1 line longer than {V1_MAX_LENGTH} bytes")
        return None
    line = window[:end]
    if b"\r" in line or b"\n" in line:
        raise ProxyProtocolError("PROXY v1 line has a bare CR or LF")
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise ProxyProtocolError("PROXY v1 line is not US-ASCII") from None
    used = end + 2
    parts = text.split(" ")
    if len(parts) < 2 or parts[0] != "PROXY":
        raise ProxyProtocolError("malformed PROXY v1 line")
    proto = parts[1]
    if proto == "UNKNOWN":
        # Section 2.1: "the receiver must ignore anything presented before the CRLF".
        header = ProxyHeader(1, Command.PROXY, Family.UNSPEC, Transport.UNSPEC, None, None)
        return header, used
    if proto not in ("TCP4", "TCP6"):
        raise ProxyProtocolError(f"PROXY v1 protocol must be TCP4, TCP6 or UNKNOWN, got {proto!r}")
    if len(parts) != 6:
        raise ProxyProtocolError("PROXY v1 line needs exactly 4 fields after the protocol")
    version = 4 if proto == "TCP4" else 6
    src_host = _v1_address(parts[2], version)
    dst_host = _v1_address(parts[3], version)
    src_port = _v1_port(parts[4])
    dst_port = _v1_port(parts[5])
    family = Family.INET if version == 4 else Family.INET6
    header = ProxyHeader(
        1, Command.PROXY, family, Transport.STREAM, (src_host, src_port), (dst_host, dst_port)
    )
    return header, used


def _v1_address(text: str, version: int) -> str:
    # Section 2.1: canonical forms only. ipaddress already rejects leading zeros in IPv4;
    # the IPv6 text form must be plain hex groups (no zone id, no embedded dotted quad).
    if version == 6 and not all(c in "0123456789abcdefABCDEF:" for c in text):
        raise ProxyProtocolError(f"bad IPv6 address in PROXY v1 line: {text!r}")
    try:
        addr = ipaddress.IPv4Address(text) if version == 4 else ipaddress.IPv6Address(text)
    except ValueError:
        raise ProxyProtocolError(f"bad IPv{version} address in PROXY v1 line: {text!r}") from None
    return str(addr)


def _v1_port(text: str) -> int:
    # Section 2.1: decimal 0-65535, no leading zeros.
    if not (text.isascii() and text.isdigit()) or (len(text) > 1 and text[0] == "0"):
        raise ProxyProtocolError(f"bad port in PROXY v1 line: {text!r}")
    port = int(text)
    if port > 0xFFFF:
        raise ProxyProtocolError(f"port out of range in PROXY v1 line: {text!r}")
    return port


def _parse_v2(data: bytes) -> tuple[ProxyHeader, int] | None:
    sig = data[: len(V2_SIGNATURE)]
    if not V2_SIGNATURE.startswith(sig):
        raise ProxyProtocolError("not a PROXY protocol header")
    if len(data) < V2_FIXED_LENGTH:
        # Check the version/command and family bytes as soon as they arrive.
        if len(data) > 12:
            _v2_command(data[12])
        if len(data) > 13:
            _v2_family(data[13])
        return None
    command = _v2_command(data[12])
    family, transport = _v2_family(data[13])
    (length,) = struct.unpack_from("!H", data, 14)
    total = V2_FIXED_LENGTH + length
    if len(data) < total:
        return None
    block = data[V2_FIXED_LENGTH:total]
    if command is Command.LOCAL:
        # Section 2.2: LOCAL discards the address block, whatever the family says; the
        # length must still be honoured.
        return ProxyHeader(2, command, family, transport, None, None), total
    source: Address | None = None
    destination: Address | None = None
    used = 0
    if family is not Family.UNSPEC and transport is not Transport.UNSPEC:
        used = _V2_ADDRESS_LENGTH[family.value]
        if length < used:
            raise ProxyProtocolError(
                f"PROXY v2 address block too short for {family.name}: {length} < {used}"
            )
        source, destination = _v2_addresses(family, block[:used])
    tlvs = _v2_tlvs(block[used:])
    return ProxyHeader(2, command, family, transport, source, destination, tlvs), total


def _v2_command(byte: int) -> Command:
    if byte >> 4 != 2:
        raise ProxyProtocolError(f"PROXY v2 version must be 2, got {byte >> 4}")
    if byte & 0x0F > 1:
        raise ProxyProtocolError(f"unknown PROXY v2 command {byte & 0x0F}")
    return Command(byte & 0x0F)


def _v2_family(byte: int) -> tuple[Family, Transport]:
    if byte >> 4 > 3:
        raise ProxyProtocolError(f"unknown PROXY v2 address family {byte >> 4}")
    if byte & 0x0F > 2:
        raise ProxyProtocolError(f"unknown PROXY v2 transport protocol {byte & 0x0F}")
    return Family(byte >> 4), Transport(byte & 0x0F)


def _v2_addresses(family: Family, block: bytes) -> tuple[Address, Address]:
    if family is Family.INET:
        src = str(ipaddress.IPv4Address(block[0:4]))
        dst = str(ipaddress.IPv4Address(block[4:8]))
        sport, dport = struct.unpack_from("!HH", block, 8)
        return (src, sport), (dst, dport)
    if family is Family.INET6:
        src = str(ipaddress.IPv6Address(block[0:16]))
        dst = str(ipaddress.IPv6Address(block[16:32]))
        sport, dport = struct.unpack_from("!HH", block, 32)
        return (src, sport), (dst, dport)
    return (_unix_path(block[:_UNIX_PATH]), 0), (_unix_path(block[_UNIX_PATH:]), 0)


def _unix_path(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")


def _v2_tlvs(raw: bytes) -> tuple[tuple[int, bytes], ...]:
    """Section 2.2: type (1 byte), length (2 bytes), value. A TLV that runs past the end of
    the header is malformed, and so is the whole header."""
    tlvs: list[tuple[int, bytes]] = []
    i = 0
    while i < len(raw):
        if len(raw) - i < 3:
            raise ProxyProtocolError("truncated TLV in PROXY v2 header")
        kind, size = struct.unpack_from("!BH", raw, i)
        i += 3
        if len(raw) - i < size:
            raise ProxyProtocolError("truncated TLV in PROXY v2 header")
        tlvs.append((kind, raw[i : i + size]))
        i += size
    return tuple(tlvs)
