"""Teleop parsers with synthetic inputs: deadzone and scaling, scripted files, keyboard keys, Unitree remote bytes,
evdev gamepad events."""

import numpy as np
import pytest

from deploy.gamepad import ABS_RX, ABS_X, ABS_Y, EV_ABS, EV_KEY, AxisRange, GamepadButtons, GamepadTeleop
from deploy.teleop import CommandRanges, KeyboardState, ModeRequest, ScriptedTeleop, ScriptEvent
from deploy.unitree_remote import (
    RemoteButtons,
    UnitreeRemoteTeleop,
    pack_wireless_remote,
    parse_wireless_remote,
)


def test_deadzone_and_asymmetric_scaling():
    r = CommandRanges(low=(-0.5, -0.5, -1.0), high=(1.0, 0.5, 1.0), deadzone=0.1)
    np.testing.assert_allclose(r.scale([0.09, -0.05, 0.0]), 0.0)
    np.testing.assert_allclose(r.scale([1.0, -1.0, 2.0]), [1.0, -0.5, 1.0])
    np.testing.assert_allclose(r.scale([-1.0, 0.55, -0.55]), [-0.5, 0.25, -0.5])  # (0.55 - 0.1) / 0.9 = 0.5
    np.testing.assert_allclose(r.scale([np.nan, 0.0, 0.0]), 0.0)
    with pytest.raises(ValueError, match="must contain 0"):
        CommandRanges(low=(0.1, -0.5, -1.0))


def test_script_plays_edges_once_clips_and_freezes_on_disconnect(tmp_path):
    events = [
        ScriptEvent(0.0, deadman=False),
        ScriptEvent(0.5, request="stand", command=(3.0, 0.0, -0.2)),
        ScriptEvent(1.0, connected=False),
    ]
    path = ScriptedTeleop.write(tmp_path / "s.json", events)
    teleop = ScriptedTeleop.from_file(path)
    teleop.start(10.0)
    first = teleop.read(10.0)
    assert not first.deadman and first.request is ModeRequest.NONE
    stand = teleop.read(10.52)
    assert stand.request is ModeRequest.STAND and stand.deadman
    np.testing.assert_allclose(stand.command, [1.0, 0.0, -0.2])  # vx clipped to the range
    assert teleop.read(10.54).request is ModeRequest.NONE  # an edge, not a level
    lost = teleop.read(11.3)
    assert not lost.connected and lost.timestamp_s == pytest.approx(10.54)
    (tmp_path / "bad.json").write_text('{"events": [{"t_s": 0, "speed": 1}]}')
    with pytest.raises(ValueError, match="bad event"):
        ScriptedTeleop.from_file(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="time order"):
        ScriptedTeleop([ScriptEvent(1.0), ScriptEvent(0.5)])
    with pytest.raises(ValueError, match="request: expected one of"):
        ScriptEvent(0.0, request="jump")


def test_keyboard_keys():
    kb = KeyboardState(CommandRanges(), step_fraction=0.25)
    for key in "wwdq":
        kb.apply_key(key)
    s = kb.sample(1.0)
    np.testing.assert_allclose(s.command, [0.5, -0.125, 0.25])
    assert not s.deadman and s.request is ModeRequest.NONE
    kb.apply_key("k")
    kb.apply_key("1")
    s = kb.sample(1.1)
    assert s.deadman and s.request is ModeRequest.STAND
    assert kb.sample(1.2).request is ModeRequest.NONE
    kb.apply_key(" ")
    kb.apply_key("\x1b")
    s = kb.sample(1.3)
    assert s.estop and s.request is ModeRequest.DAMP and np.all(s.command == 0.0)


def test_wireless_remote_bytes_round_trip_and_axis_mapping():
    raw = pack_wireless_remote({"start", "L1", "down"}, lx=0.5, ly=-0.25, rx=1.0, ry=0.125)
    assert len(raw) == 40
    remote = parse_wireless_remote(raw)
    assert remote.buttons == {"start", "L1", "down"}
    assert (remote.lx, remote.ly, remote.rx, remote.ry) == (0.5, -0.25, 1.0, 0.125)
    # the key field by hand: start = bit 2, L1 = bit 1, down = bit 14
    assert raw[2:4] == ((1 << 2) | (1 << 1) | (1 << 14)).to_bytes(2, "little")
    assert raw[20:24] == np.float32(-0.25).tobytes()  # ly sits after L2
    with pytest.raises(ValueError, match="expected 40 bytes"):
        parse_wireless_remote(raw[:10])

    latest = {"data": raw, "t": 5.0}
    single = RemoteButtons(stand="start", walk="A", estop="select", deadman="L1")  # one button per role
    teleop = UnitreeRemoteTeleop(lambda: (latest["data"], latest["t"]), CommandRanges(deadzone=0.0), single)
    s = teleop.read(5.0)
    np.testing.assert_allclose(s.command, [-0.25, -0.25, -1.0])  # vx = ly, vy = -lx (0.5 of 0.5 m/s), wz = -rx
    assert s.deadman and not s.estop and s.request is ModeRequest.STAND
    assert teleop.read(5.02).request is ModeRequest.NONE  # still held: no new edge
    latest["data"] = pack_wireless_remote({"select"})
    s = teleop.read(5.04)
    assert s.estop and not s.deadman
    assert not UnitreeRemoteTeleop(lambda: None).read(0.0).connected
    with pytest.raises(ValueError, match="deadman: expected one of"):
        RemoteButtons(deadman="L3")


def test_remote_default_buttons_are_beyondmimics_combos():
    latest = {"data": pack_wireless_remote(), "t": 0.0}
    teleop = UnitreeRemoteTeleop(lambda: (latest["data"], latest["t"]))
    assert teleop.buttons.describe() == {"stand": "L1+A", "walk": "R1+A", "estop": "B", "deadman": "R1"}

    def press(buttons, t, **axes):
        latest["data"], latest["t"] = pack_wireless_remote(buttons, **axes), t
        return teleop.read(t)

    assert press({"A"}, 0.0).request is ModeRequest.NONE  # A alone does nothing
    assert press({"L1", "A"}, 0.02).request is ModeRequest.STAND
    assert press({"L1", "A"}, 0.04).request is ModeRequest.NONE  # held: one edge only
    s = press({"R1"}, 0.06)
    assert s.deadman and s.request is ModeRequest.NONE
    s = press({"R1", "A"}, 0.08, ly=1.0, lx=0.5, rx=-1.0)
    assert s.request is ModeRequest.WALK and s.deadman
    np.testing.assert_allclose(s.command, [1.0, -0.5 * (0.5 - 0.05) / 0.95, 1.0])  # vx = ly, vy = -lx, wz = -rx
    assert press({"R1", "L1", "A"}, 0.1).request is ModeRequest.STAND  # L1+A while R1 held: stand wins
    s = press({"B"}, 0.12)
    assert s.estop and not s.deadman
    latest["data"] = bytes(40)  # the robot hears no remote
    s = teleop.read(0.14)
    assert not s.connected and not s.deadman and np.all(s.command == 0.0)


def test_gamepad_events_deadzone_buttons_and_disconnect():
    pad = GamepadTeleop(CommandRanges(deadzone=0.1), GamepadButtons())
    pad.state.ranges[ABS_Y] = AxisRange(0, 255)  # a PlayStation-style unsigned axis
    pad.feed(EV_ABS, ABS_Y, 0, 1.0)  # stick fully forward (the kernel reports forward as the minimum)
    pad.feed(EV_ABS, ABS_X, 32767, 1.0)  # fully right
    pad.feed(EV_ABS, ABS_RX, 1000, 1.0)  # within the deadzone
    pad.feed(EV_KEY, 310, 1, 1.0)  # left bumper = deadman
    pad.feed(EV_KEY, 315, 1, 1.0)  # start = stand
    s = pad.read(1.01)
    np.testing.assert_allclose(s.command, [1.0, -0.5, 0.0], atol=1e-4)
    assert s.deadman and s.request is ModeRequest.STAND and s.timestamp_s == 1.0
    pad.feed(EV_KEY, 315, 0, 1.02)
    pad.feed(EV_KEY, 304, 1, 1.02)  # south = walk
    assert pad.read(1.03).request is ModeRequest.WALK
    pad.feed(EV_KEY, 310, 0, 1.04)
    pad.feed(EV_KEY, 314, 1, 1.04)  # select = e-stop
    s = pad.read(1.05)
    assert s.estop and not s.deadman
    pad.mark_alive(1.1, connected=False)
    assert not pad.read(1.11).connected
    assert AxisRange(-32768, 32767).normalise(-32768) == -1.0
    with pytest.raises(ValueError, match="walk: expected one of"):
        GamepadButtons(walk="triangle")


def test_evdev_gamepad_reports_a_missing_extra_or_device():
    pytest.importorskip("evdev")
    from deploy.gamepad import EvdevGamepad

    with pytest.raises((OSError, RuntimeError)):
        EvdevGamepad("/dev/input/does-not-exist").start(0.0)
