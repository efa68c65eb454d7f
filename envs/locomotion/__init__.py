"""The G1 walking task for PPO, by concern (the package imports nothing itself):

- :mod:`envs.locomotion.env`: :class:`~envs.locomotion.env.G1LocomotionEnv`, the batched task on the vectorized
  MuJoCo env (commands, observations with a privileged critic part, stepping, logging, checkpoint state);
- :mod:`envs.locomotion.config`: its configs (commands and curriculum, reward weights, observation noise, task);
- :mod:`envs.locomotion.rewards`: the reward terms, one pure function of the step's state;
- :mod:`envs.locomotion.curriculum`: the command-range curriculum;
- :mod:`envs.locomotion.gait`: the reference gait (swing lift and stride) of the reward and of residual policies.
"""
