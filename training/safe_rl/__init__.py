"""Offline safe RL on DSRL data: ``collect`` (DSRL-format datasets from PPO-Lagrangian agents), ``train``,
``algorithms`` and ``config`` (FISOR, BC-All, BC-Safe, BCQ-Lagrangian), ``checkpoint``, ``evaluate`` (in the DSRL
environments, DSRL's normalized scores), ``export`` (policy files) and ``plots``."""
