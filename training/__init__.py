"""Trainers and their command lines, one subpackage per product (the top layer, beside :mod:`deploy`):

- :mod:`training.locomotion`: the PPO walking expert (config and presets, trainer, evaluation, video);
- :mod:`training.planner`: the G1 planner's data from the expert (``collect``, ``merge``), its trainer, action head,
  closed-loop evaluation and navigation, and the feasibility critic;
- :mod:`training.safe_rl`: offline safe RL on DSRL data (dataset builder, FISOR / BC / BCQ-Lag training,
  evaluation, policy export, plots);
- shared by all of them: :mod:`training.run_dir` (the run-folder layout), :mod:`training.checkpoint` (atomic,
  never-unpickling checkpoints), :mod:`training.run_config` (presets and ``--resume``), :mod:`training.stop`
  (graceful stops); and :mod:`training.demo`, behind ``make demo``.
"""
