"""Which address of this machine learners are given for a classroom room.

Loopback, link-local and interfaces that are down are never chosen; the default route's interface
comes first, then physical interfaces before container and VM bridges, private before public.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from helpers.errors import ClassroomError

#: Interface names of containers, VMs and bridges: learners' laptops cannot reach those addresses.
VIRTUAL_IFACE = re.compile(r"^(docker|br-|veth|virbr|vboxnet|vmnet|lxc|lxd|cni|flannel|podman|tun|tap|"
                           r"utun|zt|tailscale|wg)", re.I)


@dataclass(frozen=True)
class Interface:
    """One network interface as the address choice sees it."""

    name: str
    up: bool
    ipv4: tuple[str, ...]


def local_interfaces() -> list[Interface]:
    """This machine's interfaces with their IPv4 addresses (psutil, read locally)."""
    import psutil

    stats = psutil.net_if_stats()
    return [Interface(name, bool(stats.get(name) and stats[name].isup),
                      tuple(a.address for a in addrs if a.family == socket.AF_INET))
            for name, addrs in psutil.net_if_addrs().items()]


def default_route_address() -> str | None:
    """The local address the default route uses: a UDP socket "connected" to a TEST-NET address
    (RFC 5737) takes the route without sending anything."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            return probe.getsockname()[0]
    except OSError:
        return None


def choose_address(interfaces: Sequence[Interface], default_route: str | None) -> tuple[str, str]:
    """The address learners can reach, and one line saying why it was chosen.

    Candidates: IPv4 addresses of interfaces that are up, neither loopback nor link-local
    (169.254/16, what a machine gives itself without DHCP). The default route's address wins;
    else a private address on a physical-looking interface (not docker0, vboxnet0, ...); else any.
    """
    found = [(i.name, ip) for i in interfaces if i.up for ip in i.ipv4
             if not (ipaddress.ip_address(ip).is_loopback or ipaddress.ip_address(ip).is_link_local)]
    if not found:
        raise ClassroomError("This machine has no usable network address (only loopback, "
                             "link-local or interfaces that are down): connect it to the room's "
                             "network, or give --host 127.0.0.1 to rehearse alone.")

    def rank(item: tuple[str, str]) -> tuple[int, int, int]:
        name, ip = item
        return (ip != default_route, bool(VIRTUAL_IFACE.match(name)),
                not ipaddress.ip_address(ip).is_private)

    name, ip = min(found, key=rank)
    if ip == default_route:
        why = "the default route's interface"
    elif not VIRTUAL_IFACE.match(name):
        why = "no default route; first up, non-virtual interface"
    else:
        why = "only container/VM interfaces are up"
    others = ", ".join(f"{n} {a}" for n, a in found if a != ip)
    return ip, (f"Learners are given {ip} ({name}: {why}"
                + (f"; also up: {others}" if others else "") + "). Another? --advertise ADDRESS.")


def lan_addresses() -> list[str]:
    """This machine's usable IPv4 addresses, in the order `choose_address` prefers them."""
    interfaces = local_interfaces()
    default = default_route_address()
    found = []
    while True:
        try:
            ip, _ = choose_address([Interface(i.name, i.up, tuple(a for a in i.ipv4 if a not in found))
                                    for i in interfaces], default)
        except ClassroomError:
            return found
        found.append(ip)
