"""Unitree G1 low-level control over DDS (``unitree_hg`` messages), and a MuJoCo robot double serving them.

- :mod:`robot.unitree.crc`: Unitree's CRC32 and the packed C layout it covers (no DDS needed);
- :mod:`robot.unitree.msgs`: the IDL message types, topic names and conversions to our messages;
- :mod:`robot.unitree.dds`: Cyclone DDS configuration (interface, loopback discovery) and QoS;
- :mod:`robot.unitree.dds_robot`: :class:`~robot.unitree.dds_robot.DdsRobot`, the hardware backend;
- :mod:`robot.unitree.sim_bridge`: the robot double, ``python -m robot.unitree.sim_bridge``.

Everything but :mod:`robot.unitree.crc` needs the ``hardware`` extra: ``cyclonedds==0.10.2``, the Cyclone DDS
version of Unitree's robots and SDKs, built against Debian's ``cyclonedds-dev`` by ``.ci/install_cyclonedds.sh``.
"""
