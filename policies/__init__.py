"""Networks and their losses, pure torch (no robot, env or trainer imports): :mod:`policies.diffusion` (schedules,
samplers, denoisers, guidance, the latent planner, int8), :mod:`policies.fisor` (FISOR), :mod:`policies.baselines`
(BC and BCQ-Lagrangian), :mod:`policies.critics` (value and Q ensembles, expectile losses), ``feasibility`` (the
reachability critic of the G1 planner), ``mirror`` (left-right equivariance) and ``normalizer``."""
