"""Running policies on the robot (the top layer, beside :mod:`training`): ``run`` (one command for the simulated and
the real G1), ``loop`` (the fixed-rate control loop), ``safety_fsm`` (the operator state machine), ``teleop``,
``gamepad`` and ``unitree_remote`` (commands), ``g1_backend`` (the G1 over DDS), ``timing``, :mod:`deploy.policies`
(exported policies: interface, backends, loader, exporters), ``export``, ``export_planner`` and
``export_planner_onnx`` (writing planners), ``import_expert`` (the walking actor as a deploy policy), ``demo`` (the
point-mass demo). ``policy_io``, ``onnx_io`` and ``planner_policy`` are former module names kept as aliases."""
