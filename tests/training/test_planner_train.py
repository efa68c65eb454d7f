"""The G1 planner trainer: two stages, exact resume, a loadable EMA planner, clear data errors."""

import dataclasses

import numpy as np
import pytest
import torch

from envs.planner.costs import G1CostConfig, g1_joystick_cost, g1_waypoint_cost
from envs.planner.dataset import load_planner_dataset
from policies.diffusion.guidance import CostSum
from policies.diffusion.model import DiffusionConfig
from policies.diffusion.planner import PLANNER_MODEL_FORMAT, DiffusionPlanner, PlannerConfig, TransformerDenoiserConfig
from policies.diffusion.sampling import SamplerConfig
from policies.diffusion.schedules import ScheduleConfig
from robot.configio import from_jsonable
from tests.training.helpers import write_random_planner_dataset
from training.checkpoint import load_checkpoint
from training.planner.train import PlannerTrainConfig, PlannerTrainer, g1_planner_config


def _dataset(path, episodes: int = 6, steps: int = 30, seed: int = 0):
    return write_random_planner_dataset(path, episodes, steps, seed)


def _cfg(data, run_dir, steps: int, vae_steps: int = 3, latent: int = 4, **kw) -> PlannerTrainConfig:
    planner = dataclasses.replace(
        g1_planner_config(),
        latent_dim=latent,
        denoiser=TransformerDenoiserConfig(num_layers=1, num_heads=2, width=32),
        diffusion=DiffusionConfig(
            schedule=ScheduleConfig(kind="cosine", num_train_steps=20),
            prediction_type="x0",
            per_token_noise=True,
            sampler=SamplerConfig(kind="ddim", num_steps=3),
        ),
    )
    return PlannerTrainConfig(
        data=data,
        run_dir=run_dir,
        planner=planner,
        steps=steps,
        vae_steps=vae_steps,
        batch_size=8,
        val_windows=16,
        eval_every=2,
        save_every=3,
        torch_threads=1,
        **kw,
    )


def test_two_stages_and_resume_equal_an_uninterrupted_run(tmp_path):
    data = _dataset(tmp_path / "d.h5")
    straight = PlannerTrainer(_cfg(data, tmp_path / "a", steps=5))
    straight.run()
    assert straight.step == 8 and straight.stage == "denoiser"
    first = PlannerTrainer(_cfg(data, tmp_path / "b", steps=5, max_minutes=0.0))  # stops after one step
    first.run()
    assert first.step == 1
    for _ in range(4):  # the run killed at step 1, resumed, stopped again at each step through the stage change
        resumed = PlannerTrainer(_cfg(data, tmp_path / "b", steps=5, resume=True, max_minutes=0.0))
        resumed.run()
    resumed = PlannerTrainer(_cfg(data, tmp_path / "b", steps=5, resume=True))
    assert resumed.step == 5
    resumed.run()
    for a, b in zip(straight.ema.state_dict().values(), resumed.ema.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    rows_a = (tmp_path / "a" / "metrics.csv").read_text().splitlines()
    rows_b = (tmp_path / "b" / "metrics.csv").read_text().splitlines()

    def scored(rows):  # step, stage, validation loss (the train-loss column averages since the last row)
        return [[r.split(",")[i] for i in (0, 1, 3)] for r in rows if r.split(",")[0] in ("4", "6", "8")]

    assert scored(rows_a) == scored(rows_b)
    # the autoencoder is frozen in the denoiser stage
    vae_a = {k: v for k, v in straight.planner.state_dict().items() if ".vae." in k}
    ckpt_at_3 = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")  # written at the end
    assert all(torch.equal(v, ckpt_at_3["planner"][k]) for k, v in vae_a.items())


def test_the_saved_planner_loads_and_plans_with_g1_costs(tmp_path):
    data = _dataset(tmp_path / "d.h5")
    trainer = PlannerTrainer(_cfg(data, tmp_path / "r", steps=2, vae_steps=0, latent=0))
    trainer.run()
    model = load_checkpoint(tmp_path / "r" / "model" / "planner_model.pt")
    assert model["format"] == PLANNER_MODEL_FORMAT and model["ctrl_dt_s"] == 0.02
    pc = from_jsonable(PlannerConfig, model["planner_config"], "planner_config")
    costs = CostSum([g1_joystick_cost(G1CostConfig()), g1_waypoint_cost(pc.history, model["ctrl_dt_s"])], [1.0, 1.0])
    planner = DiffusionPlanner(pc, costs)
    planner.load_weights(model["weights"])
    with pytest.raises(ValueError, match="do not fit"):
        DiffusionPlanner(dataclasses.replace(pc, denoiser=dataclasses.replace(pc.denoiser, width=64))).load_weights(
            model["weights"]
        )
    obs = torch.randn(2, pc.history, pc.state_dim)
    out = planner.act(obs, cost_params=torch.zeros(2, 5), generator=torch.Generator().manual_seed(0))
    assert out["plan_states"].shape == (2, pc.horizon, pc.state_dim)
    assert out["action_chunk"].shape == (2, 1, pc.action_dim)
    assert torch.isfinite(out["plan_actions"]).all()


def test_windows_pair_each_state_with_the_action_that_led_to_it(tmp_path):
    data = _dataset(tmp_path / "d.h5", episodes=3, steps=25)
    trainer = PlannerTrainer(_cfg(data, tmp_path / "w", steps=1))
    d = trainer.data
    assert int(d.train[:, 1].min()) == 1 and int(d.train[:, 1].max()) == 25 - 20
    raw = load_planner_dataset(data).arrays
    e, t = (int(v) for v in d.train[7])
    b = d.batch(d.train[7:8])
    np.testing.assert_array_equal(b["states"][0].numpy(), raw["state"][e, t : t + 20])
    np.testing.assert_array_equal(b["actions"][0].numpy(), raw["expert_action"][e, t - 1 : t + 19])


def test_data_problems_are_named(tmp_path):
    short = _dataset(tmp_path / "short.h5", steps=10)
    with pytest.raises(ValueError, match=r"short\.h5: episodes of 10 steps are too short for the planner window \(20"):
        PlannerTrainer(_cfg(short, tmp_path / "x", steps=1))
    one = _dataset(tmp_path / "one.h5", episodes=1)
    with pytest.raises(ValueError, match="need at least 2"):
        PlannerTrainer(_cfg(one, tmp_path / "y", steps=1))
    with pytest.raises(ValueError, match="action_key"):
        _cfg(short, tmp_path / "z", steps=1, action_key="torques")
    with pytest.raises(ValueError, match="no such file"):
        PlannerTrainer(_cfg(tmp_path / "missing.h5", tmp_path / "w", steps=1))


def test_init_from_starts_at_the_source_weights_with_a_fresh_schedule(tmp_path):
    source_data = _dataset(tmp_path / "source.h5", seed=0)
    source = PlannerTrainer(_cfg(source_data, tmp_path / "src", steps=4, vae_steps=0, latent=0))
    source.run()
    model = tmp_path / "src" / "model" / "planner_model.pt"
    weights = load_checkpoint(model)["weights"]
    new_data = _dataset(tmp_path / "new.h5", seed=1)  # other data: its own normaliser fit would differ
    cfg = _cfg(new_data, tmp_path / "ft", steps=3, vae_steps=0, latent=0, init_from=model)
    tuned = PlannerTrainer(cfg)
    own = tuned.planner.weights()
    for k, v in weights.items():  # normalisers included: the network sees inputs scaled as it learned them
        torch.testing.assert_close(own[k], v, msg=k)
    assert tuned.step == 0 and tuned.opt.param_groups[0]["lr"] == pytest.approx(cfg.lr)  # not the source's floor
    tuned.run()
    assert tuned.step == 3
    assert any(not torch.equal(tuned.ema.weights()[k], v) for k, v in weights.items())  # it did train
    fresh = PlannerTrainer(_cfg(new_data, tmp_path / "fresh", steps=3, vae_steps=0, latent=0))
    assert any(not torch.equal(fresh.planner.weights()[k], v) for k, v in weights.items())


def test_init_from_names_the_network_fields_that_differ(tmp_path):
    data = _dataset(tmp_path / "d.h5")
    PlannerTrainer(_cfg(data, tmp_path / "src", steps=1, vae_steps=0, latent=0)).run()
    model = tmp_path / "src" / "model" / "planner_model.pt"
    with pytest.raises(ValueError, match=r"'latent_dim': \(4, 0\)"):
        PlannerTrainer(_cfg(data, tmp_path / "ft", steps=1, vae_steps=0, latent=4, init_from=model))
    with pytest.raises(ValueError, match="pass --vae-steps 0"):
        _cfg(data, tmp_path / "ft2", steps=1, vae_steps=3, latent=4, init_from=model)
