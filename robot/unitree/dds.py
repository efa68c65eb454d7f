"""Cyclone DDS set-up shared by the G1 backend and its robot double: domain configuration and QoS.

Version: Cyclone DDS 0.10.2, C library and Python binding, the version Unitree's robots and SDKs run
(``unitree_sdk2_python`` pins ``cyclonedds==0.10.2``). Measured on loopback with the robot double on 0.10.2: a
``DdsRobot`` on the 0.10.2 binding connects at once and exchanges ``rt/lowstate`` / ``rt/lowcmd`` with valid CRCs;
the same code on the ``cyclonedds`` 11.0.1 wheel receives nothing (the 0.10.2 side logs ``ddsi_xt_type_init_impl
with invalid type object``: 11.x sends XTypes type information that 0.10.x cannot parse, so the endpoints never
match). Hence the ``hardware`` extra pins 0.10.2, built against Debian's ``cyclonedds-dev`` by
``.ci/install_cyclonedds.sh``; :func:`binding_version_problem` says when another binding is loaded.

Threads: Cyclone delivers a sample to readers in the same process from the writing thread, and the Python binding
writes holding the GIL. A Python listener on a topic that this process also writes, from more than one thread or
while samples also arrive from the network, can therefore deadlock. Our processes never read what they write
(:class:`~robot.unitree.dds_robot.DdsRobot` writes ``rt/lowcmd`` and listens to ``rt/lowstate``, the robot double
the reverse); a test that does both polls with ``take()`` instead of using a listener.

Configuration is explicit and made in code, never read from a file the user must write:

- ``network_interface=None``: Cyclone's defaults (or ``$CYCLONEDDS_URI`` if the user set one);
- a NIC name (``"enp3s0"``): discovery and data on that interface only, as Unitree's SDK configures it;
- ``"lo"``: a robot double on this machine. The loopback interface usually lacks the MULTICAST flag, so
  discovery is unicast to 127.0.0.1 with automatic participant indices.
"""

from __future__ import annotations

import re
import threading

try:
    from cyclonedds.core import Policy, Qos
    from cyclonedds.domain import Domain, DomainParticipant
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "robot.unitree needs Cyclone DDS 0.10.2 for Python: run .ci/install_cyclonedds.sh (as root it installs "
        "Debian's cyclonedds-dev and builds the cyclonedds==0.10.2 binding against it)"
    ) from exc

ROBOT_DDS_SERIES = "0.10"
"""Cyclone DDS release series of Unitree's robots and SDKs: the binding must be from it to reach a real robot."""
LOOPBACK = "lo"
MAX_LOOPBACK_PARTICIPANTS = 16
"""Participants on one loopback domain that find each other (ports of unicast discovery probed per peer)."""

_DOMAINS: dict[int, tuple[str | None, Domain | None]] = {}
_DOMAINS_LOCK = threading.Lock()


def binding_version() -> str:
    """Version of the installed ``cyclonedds`` Python binding (its C library is the same release)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cyclonedds")
    except PackageNotFoundError:  # pragma: no cover - importable but not installed as a distribution
        return "unknown"


def binding_version_problem() -> str | None:
    """Why this binding cannot talk to a real robot (not the 0.10 series), or None when it can."""
    found = binding_version()
    if found.split(".")[:2] == ROBOT_DDS_SERIES.split("."):
        return None
    return (
        f"cyclonedds {found} is loaded, but Unitree's robots run Cyclone DDS {ROBOT_DDS_SERIES}.x and the two do not "
        "exchange data (type-information mismatch); run .ci/install_cyclonedds.sh to install cyclonedds==0.10.2"
    )


def cyclonedds_config_xml(network_interface: str | None) -> str | None:
    """The Cyclone DDS XML for ``network_interface`` (see module docstring); None for Cyclone's defaults."""
    if network_interface is None:
        return None
    if not re.fullmatch(r"[A-Za-z0-9_.:@-]{1,64}", network_interface):
        raise ValueError(
            f"network_interface: expected an interface name such as 'eth0' or 'lo', got {network_interface!r}"
        )
    general = f'<General><Interfaces><NetworkInterface name="{network_interface}"/></Interfaces>'
    if network_interface != LOOPBACK:
        return f'<CycloneDDS><Domain Id="any">{general}</General></Domain></CycloneDDS>'
    return (
        f'<CycloneDDS><Domain Id="any">{general}<AllowMulticast>false</AllowMulticast></General>'
        '<Discovery><Peers><Peer address="127.0.0.1"/></Peers><ParticipantIndex>auto</ParticipantIndex>'
        f"<MaxAutoParticipantIndex>{MAX_LOOPBACK_PARTICIPANTS}</MaxAutoParticipantIndex></Discovery>"
        "</Domain></CycloneDDS>"
    )


def open_participant(domain_id: int, network_interface: str | None) -> DomainParticipant:
    """A participant on ``domain_id`` configured for ``network_interface``.

    One configuration per domain and process: Cyclone keeps one domain object per id, so a second call with a
    different interface for the same id raises instead of silently using the first configuration.
    """
    if not 0 <= domain_id <= 232:
        raise ValueError(f"domain_id: expected an integer in [0, 232] (DDS port mapping), got {domain_id}")
    xml = cyclonedds_config_xml(network_interface)
    with _DOMAINS_LOCK:
        if domain_id in _DOMAINS:
            known = _DOMAINS[domain_id][0]
            if known != xml:
                raise ValueError(
                    f"DDS domain {domain_id} is already open in this process with another configuration "
                    f"(network_interface differs); use one network_interface per domain id"
                )
        else:
            # The Domain object must outlive its participants: deleting it deletes them.
            _DOMAINS[domain_id] = (xml, Domain(domain_id, xml) if xml is not None else None)
    return DomainParticipant(domain_id)


def writer_qos() -> Qos:
    """Reliable (matches best-effort and reliable readers), keep only the newest sample."""
    return Qos(Policy.Reliability.Reliable(max_blocking_time=0), Policy.History.KeepLast(1))


def reader_qos() -> Qos:
    """Best effort (matches any writer), keep only the newest sample: a controller wants the latest state."""
    return Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(1))
