"""Offline safe RL on DSRL tasks: dataset generation (PPO-Lagrangian agents), training and evaluation CLIs."""
