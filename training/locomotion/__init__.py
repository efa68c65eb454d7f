"""The walking expert: ``config`` (options and presets), ``train`` (rsl-rl PPO with exact resume), ``evaluate`` (the
expert benchmark and its sim-to-sim conditions), ``rsl_env`` (the env adapter) and ``video``."""
