"""The Run operator and its session, driven by test-double engines (see fakes.py).

Background mode makes ``clipdraw.run`` block until the job is over; the modal path is driven
here through ``RunSession.pump`` (what the modal timer calls) so that mid-run events (delete,
save, load, cancel twice, run again) can be injected between pumps.
"""

from __future__ import annotations

import time
import types

import bpy
import pytest
from common import ADDON
from drawings import lines_drawing
from fakes import fake_run_job, fake_worker_job

from blender_addon import engine_path, grease_pencil, launch, operators, preferences, results, session


@pytest.fixture
def settings(addon):
    s = bpy.context.scene.clipdraw
    s.prompt = "three lines"
    s.strokes, s.steps, s.snapshot_every, s.canvas = 3, 12, 4, (200, 100)
    yield s
    session.stop_all()


@pytest.fixture
def fake_engine(monkeypatch):
    """In-process runner with the fake engine (AUTO picks it because torch imports here)."""
    monkeypatch.setattr(engine_path, "in_process_problem", lambda: None)
    monkeypatch.setattr(engine_path, "load_run_job", lambda: fake_run_job())


def start_session(make_job=None, monkeypatch=None) -> session.RunSession:
    if make_job is not None:
        monkeypatch.setattr(launch, "make_job", make_job)
    return launch.start(bpy.context, preferences.runner_choice(bpy.context), follow=True)


def pump_until(run: session.RunSession, condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        run.pump(budget_s=None)
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_background_run_blocks_and_builds_an_animated_object(settings, fake_engine):
    assert bpy.ops.clipdraw.run() == {'FINISHED'}
    last = session.last_run()
    assert last.status == "finished" and not last.error
    obj = bpy.data.objects[last.object_name]
    assert obj.name.startswith("CLIPDraw three lines")
    assert grease_pencil.frame_numbers(obj.data) == [1, 2, 3, 4]  # snapshots at steps 0, 4, 8, 12
    assert obj["clipdraw_prompt"] == "three lines" and obj["clipdraw_seed"] == 0
    assert obj["clipdraw_strokes"] == 3 and list(obj["clipdraw_canvas"]) == [200, 100]
    assert '"snapshot_every": 4' in obj["clipdraw_request"] and obj["clipdraw_cancelled"] == 0
    assert obj.users_collection[0].name == results.COLLECTION_NAME
    assert session.current() is None and bpy.ops.clipdraw.run.poll()


def test_new_results_at_the_cursor_sit_side_by_side_not_on_top(settings, fake_engine):
    bpy.context.scene.cursor.location = (1.0, 0.0, 2.0)
    width = settings.plane_width
    made = []
    for _ in range(3):
        assert bpy.ops.clipdraw.run() == {'FINISHED'}
        made.append(bpy.data.objects[session.last_run().object_name])
    xs = [o.matrix_world.translation.x for o in made]
    assert xs == pytest.approx([1.0, 1.0 + 1.1 * width, 1.0 + 2.2 * width])  # along the canvas' right
    assert {round(o.matrix_world.translation.z, 6) for o in made} == {2.0}
    settings.target = "REPLACE"  # replacing keeps the object where it is
    bpy.context.view_layer.objects.active = made[0]
    assert bpy.ops.clipdraw.run() == {'FINISHED'}
    assert made[0].matrix_world.translation.x == pytest.approx(1.0)


def test_curves_output_and_final_only(settings, fake_engine):
    settings.output, settings.animation = "CURVES", "FINAL"
    assert bpy.ops.clipdraw.run() == {'FINISHED'}
    obj = bpy.data.objects[session.last_run().object_name]
    assert obj.type == 'CURVE' and len(obj.data.splines) == 3
    assert obj.data.animation_data is None  # final result only: nothing keyframed


def test_empty_prompt_is_refused_with_a_clear_message(settings, fake_engine):
    settings.prompt = "   "
    with pytest.raises(RuntimeError, match="prompt is empty"):
        bpy.ops.clipdraw.run()
    assert "prompt is empty" in session.last_run().error
    assert len(bpy.data.objects) == 0


def test_out_of_range_settings_are_clamped_and_the_engine_refuses_bad_requests(settings, engine_python):
    settings.steps, settings.strokes = 0, 10**6
    assert (settings.steps, settings.strokes) == (1, 10_000)  # Blender clamps to the engine's range
    from blender_addon import bridge

    job = bridge.SubprocessJob({"prompt": "x", "steps": 0, "model": "builtin"}, engine_python,
                               engine_path.engine_root())
    err = list(bridge.iterate(job, timeout=60))[-1]
    job.close()
    assert err["kind"] == "bad_request" and "steps must be between 1 and 100000" in err["message"]


def test_camera_placement_without_a_camera_is_refused(settings, fake_engine):
    settings.placement = "CAMERA"
    with pytest.raises(RuntimeError, match="needs an active camera"):
        bpy.ops.clipdraw.run()


def test_replace_active_needs_a_matching_object(settings, fake_engine):
    settings.target = "REPLACE"
    with pytest.raises(RuntimeError, match="needs an active object"):
        bpy.ops.clipdraw.run()
    assert bpy.ops.clipdraw.run.poll()
    settings.target = "NEW"
    bpy.ops.clipdraw.run()
    first = bpy.data.objects[session.last_run().object_name]
    bpy.context.view_layer.objects.active = first
    settings.target, settings.prompt = "REPLACE", "other lines"
    bpy.ops.clipdraw.run()
    assert session.last_run().object_name == first.name and first["clipdraw_prompt"] == "other lines"
    assert len(bpy.data.objects) == 1
    settings.output = "CURVES"
    with pytest.raises(RuntimeError, match="not a CURVE object"):
        bpy.ops.clipdraw.run()


def test_run_while_running_cancel_twice_keeps_the_strokes(settings, monkeypatch):
    monkeypatch.setattr(engine_path, "in_process_problem", lambda: None)
    monkeypatch.setattr(engine_path, "load_run_job", lambda: fake_run_job(delay=0.02))
    settings.steps = 2000
    run = start_session()
    with pytest.raises(RuntimeError, match="already running"):
        bpy.ops.clipdraw.run()
    pump_until(run, lambda: run.step >= 8)
    at_cancel = run.step
    bpy.ops.clipdraw.cancel()
    bpy.ops.clipdraw.cancel.poll() and bpy.ops.clipdraw.cancel()  # pressed twice
    run.cancel()
    pump_until(run, lambda: not run.running)  # 20 s: an ignored cancel would take 40 s
    # Counted in steps, not seconds: it stops at the next step boundary; 100 steps (2 s of the
    # fake's sleeping) only bound the scheduling delay on a loaded machine.
    assert run.status == "cancelled" and at_cancel <= run.step <= at_cancel + 100
    obj = run.writer.object
    assert obj["clipdraw_cancelled"] == 1 and len(grease_pencil.frame_numbers(obj.data)) >= 3
    session.release(run)
    assert not bpy.ops.clipdraw.cancel.poll()


def test_worker_crash_is_an_error_and_the_object_keeps_its_last_drawing(settings, monkeypatch, tmp_path):
    monkeypatch.setattr(launch, "make_job", lambda request, choice: fake_worker_job("crash", request))
    settings.steps, settings.snapshot_every = 20, 2
    with pytest.raises(RuntimeError, match="exited with code 3"):
        bpy.ops.clipdraw.run()
    last = session.last_run()
    assert last.status == "failed" and "simulated crash" in last.error
    obj = bpy.data.objects[last.object_name]
    assert grease_pencil.frame_numbers(obj.data) == [1, 2, 3]  # steps 0, 2 and 4 arrived before the crash
    assert "exited with code 3" in obj["clipdraw_error"]
    path = str(tmp_path / "after_crash.blend")
    bpy.ops.wm.save_as_mainfile(filepath=path)
    bpy.ops.wm.open_mainfile(filepath=path)
    assert len(grease_pencil.frame_numbers(bpy.data.objects[last.object_name].data)) == 3


def test_engine_error_event_mid_run_keeps_the_curve_animation(settings, monkeypatch):
    monkeypatch.setattr(engine_path, "in_process_problem", lambda: None)
    monkeypatch.setattr(engine_path, "load_run_job", lambda: fake_run_job(crash_at=10))
    settings.output = "CURVES"
    with pytest.raises(RuntimeError, match="fake engine failure"):
        bpy.ops.clipdraw.run()
    obj = bpy.data.objects[session.last_run().object_name]
    from blender_addon import animation

    fc = animation.find_fcurve(obj.data, "splines[0].bezier_points[0].co", 1)
    assert fc is not None and [k.co[0] for k in fc.keyframe_points] == [1, 2, 3]


def test_missing_worker_python_names_the_preference(settings):
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.runner, prefs.python_path = "SUBPROCESS", "/nonexistent/bin/python"
    with pytest.raises(RuntimeError, match="cannot start the worker Python.*preferences"):
        bpy.ops.clipdraw.run()
    assert len(bpy.data.objects) == 0


def test_deleting_the_result_mid_run_cancels_cleanly(settings, monkeypatch):
    monkeypatch.setattr(engine_path, "in_process_problem", lambda: None)
    monkeypatch.setattr(engine_path, "load_run_job", lambda: fake_run_job(delay=0.02))
    settings.steps = 2000
    run = start_session()
    pump_until(run, lambda: run.writer._obj is not None)
    bpy.data.objects.remove(run.writer.object)
    pump_until(run, lambda: not run.running)
    assert run.status == "failed" and "was deleted" in run.error and run.job.cancel_requested
    run.job.wait(5)
    assert run.job._terminal_queued.is_set()  # the engine stopped too
    session.release(run)


def test_saving_mid_run_writes_a_valid_file_and_the_run_goes_on(settings, monkeypatch, tmp_path):
    monkeypatch.setattr(launch, "make_job", lambda request, choice: fake_worker_job("slow", request))
    settings.steps, settings.snapshot_every = 30, 5
    run = start_session()
    pump_until(run, lambda: run.step >= 10)
    path = str(tmp_path / "mid_run.blend")
    bpy.ops.wm.save_as_mainfile(filepath=path, copy=True)
    pump_until(run, lambda: not run.running)
    assert run.status == "finished"
    name = run.object_name()
    frames_at_end = grease_pencil.frame_numbers(bpy.data.objects[name].data)
    assert frames_at_end == [1, 2, 3, 4, 5, 6, 7]
    session.release(run)
    bpy.ops.wm.open_mainfile(filepath=path)
    saved = grease_pencil.frame_numbers(bpy.data.objects[name].data)
    assert 2 <= len(saved) < len(frames_at_end)


def test_loading_a_file_stops_the_worker(settings, monkeypatch):
    monkeypatch.setattr(launch, "make_job", lambda request, choice: fake_worker_job("slow", request))
    settings.steps = 1000
    run = start_session()
    pump_until(run, lambda: run.step >= 2)
    proc = run.job.process
    bpy.ops.wm.read_homefile(use_empty=True)  # load_pre handler: stop the job
    assert session.current() is None
    proc.wait(5)
    assert proc.returncode is not None and not run.running


class ModalHarness:
    """The Run operator's modal methods on a plain object: Blender has no event loop headless, so
    the test plays the event loop (TIMER and ESC events) against the real modal code."""

    execute = operators.CLIPDRAW_OT_run.execute
    modal = operators.CLIPDRAW_OT_run.modal
    cancel = operators.CLIPDRAW_OT_run.cancel
    _show = operators.CLIPDRAW_OT_run._show
    _finish = operators.CLIPDRAW_OT_run._finish
    _cleanup = operators.CLIPDRAW_OT_run._cleanup
    _block = operators.CLIPDRAW_OT_run._block
    _start = operators.CLIPDRAW_OT_run._start
    _refused = operators.CLIPDRAW_OT_run._refused
    _render_step = operators.CLIPDRAW_OT_run._render_step
    _drop_shot = operators.CLIPDRAW_OT_run._drop_shot
    init_file = lock = ""

    def __init__(self):
        self._timer = None
        self._session = None
        self._shot = None
        self.reports: list[tuple[str, str]] = []

    def report(self, level, text):
        self.reports.append((next(iter(level)), text))


def start_modal() -> ModalHarness:
    op = ModalHarness()
    context = bpy.context
    run = start_session()
    op._session = run
    op._timer = context.window_manager.event_timer_add(operators.TIMER_S, window=context.window)
    return op


def test_modal_timer_pumps_esc_cancels_and_every_exit_removes_the_timer(settings, monkeypatch):
    monkeypatch.setattr(engine_path, "in_process_problem", lambda: None)
    monkeypatch.setattr(engine_path, "load_run_job", lambda: fake_run_job(delay=0.01))
    settings.steps = 2000
    op = start_modal()
    timer = types.SimpleNamespace(type='TIMER', value='NOTHING', timer=op._timer)
    esc = types.SimpleNamespace(type='ESC', value='PRESS', timer=None)
    other = types.SimpleNamespace(type='MOUSEMOVE', value='NOTHING', timer=None)
    assert op.modal(bpy.context, other) == {'PASS_THROUGH'}  # the UI stays usable
    deadline = time.monotonic() + 10
    while op._session.step < 5:
        assert op.modal(bpy.context, timer) == {'PASS_THROUGH'}
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert op.modal(bpy.context, esc) == {'RUNNING_MODAL'}
    assert ("INFO", "Cancelling after the current step") in op.reports
    result = None
    while result is None or result == {'PASS_THROUGH'}:
        result = op.modal(bpy.context, timer)
        time.sleep(0.01)
    assert result == {'FINISHED'} and op._timer is None
    assert session.current() is None and session.last_run().status == "cancelled"
    assert any(level == "INFO" and "cancelled at step" in text for level, text in op.reports)


def test_modal_cancel_from_blender_stops_the_job_and_removes_the_timer(settings, monkeypatch):
    monkeypatch.setattr(launch, "make_job", lambda request, choice: fake_worker_job("slow", request))
    settings.steps = 1000
    op = start_modal()
    proc = op._session.job.process
    op.cancel(bpy.context)  # what Blender calls when the window or file closes under a modal operator
    assert op._timer is None and session.current() is None
    proc.wait(5)
    assert proc.returncode is not None


def test_an_unreadable_drawing_fails_the_run_clearly(settings, monkeypatch):
    def run_job(request, should_stop):
        yield {"event": "started", "protocol": engine_path.import_engine("wire").PROTOCOL_VERSION, "steps": 3}
        yield {"event": "snapshot", "step": 0, "drawing": {"format": "drawing", "version": 99}}
        while not should_stop():
            time.sleep(0.01)
        yield {"event": "done", "step": 1, "cancelled": True, "drawing": None}

    monkeypatch.setattr(engine_path, "in_process_problem", lambda: None)
    monkeypatch.setattr(engine_path, "load_run_job", lambda: run_job)
    with pytest.raises(RuntimeError, match="cannot read .*version 99"):
        bpy.ops.clipdraw.run()
    assert session.last_run().status == "failed" and len(bpy.data.objects) == 0


@pytest.mark.parametrize("protocol", [None, 1, 99])
def test_an_engine_of_another_protocol_is_refused_before_anything_is_built(settings, monkeypatch, protocol):
    def run_job(request, should_stop):
        started = {"event": "started", "steps": 3, "device": "cpu", "model": "old"}
        yield started if protocol is None else {**started, "protocol": protocol}
        while not should_stop():
            yield {"event": "snapshot", "step": 0, "drawing": lines_drawing(2).to_dict()}
            time.sleep(0.01)
        yield {"event": "done", "step": 1, "cancelled": True, "drawing": None}

    monkeypatch.setattr(engine_path, "in_process_problem", lambda: None)
    monkeypatch.setattr(engine_path, "load_run_job", lambda: run_job)
    with pytest.raises(RuntimeError, match=f"engine speaks protocol {protocol or 1} but the add-on speaks"):
        bpy.ops.clipdraw.run()
    assert session.last_run().status == "failed" and len(bpy.data.objects) == 0


def test_unknown_event_kinds_are_reported_not_dropped(settings, monkeypatch):
    wire = engine_path.import_engine("wire")

    def run_job(request, should_stop):
        yield {"event": "started", "protocol": wire.PROTOCOL_VERSION, "steps": 1, "device": "cpu", "model": "fake"}
        yield {"event": "telemetry", "step": 1}
        yield {"event": "done", "step": 1, "cancelled": False, "drawing": lines_drawing(2).to_dict()}

    monkeypatch.setattr(engine_path, "in_process_problem", lambda: None)
    monkeypatch.setattr(engine_path, "load_run_job", lambda: run_job)
    run = launch.start(bpy.context, preferences.runner_choice(bpy.context), follow=False)
    pump_until(run, lambda: not run.running)
    texts = [text for level, text in run.take_messages() if level == "WARNING"]
    assert run.status == "finished" and any("unknown kind 'telemetry'" in t for t in texts)
    session.release(run)
