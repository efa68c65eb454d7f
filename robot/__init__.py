"""The robot layer (the lowest: imports nothing else of Steer): :mod:`robot.g1` (the G1's constants, gains, links and
MuJoCo model), ``interface`` (the robot interface both backends implement), ``sim`` (the MuJoCo backend),
:mod:`robot.unitree` (DDS messages, the DDS backend and the robot double), ``safety`` (limits and watchdogs applied
once in the interface), :mod:`robot.estimation` (the base-state estimator), ``sensor_model``, ``actuation``,
``compat`` and ``joint_order`` (does a policy fit the robot), and the shared utilities ``files`` (atomic writes),
``configio`` (configs to and from JSON) and ``cli`` (one-line errors, plain help)."""
