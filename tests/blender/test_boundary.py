"""The add-on's side of the one protocol: it runs and validates requests with torch, PIL and open_clip blocked.

A fresh Blender (bpy) process whose import system refuses torch, PIL, open_clip and torchvision
enables the add-on, builds each method's request from the panel's settings and checks it with
the engine's own rules, offline: the add-on needs nothing heavy until a job runs.
"""

from __future__ import annotations

import subprocess
import sys

from common import ADDON, ROOT

SCRIPT = f"""
import sys
BLOCKED = {{"torch", "PIL", "open_clip", "torchvision"}}

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)", name=name)

sys.meta_path.insert(0, Block())
sys.path.insert(0, {str(ROOT)!r})
import bpy
import addon_utils
bpy.ops.wm.read_factory_settings(use_empty=True)
assert addon_utils.enable({ADDON!r}, default_set=True, handle_error=lambda e: (_ for _ in ()).throw(e))
from {ADDON} import launch, properties
s = bpy.context.scene.clipdraw
s.prompt, s.model = "a red circle", "builtin"
for method, images in (("CLIPDRAW", {{}}), ("STYLE", {{"style_image": "s.png"}}), ("SKETCH", {{"image": "i.png"}})):
    s.method = method
    request = properties.request_from(s, images=images, offline=True)
    launch.check_request(request)
    assert request["offline"] is True
s.method = "CLIPDRAW"
request = properties.request_from(s)
request["strokes"] = 0
try:
    launch.check_request(request)
    raise SystemExit("a bad request passed")
except launch.RunRefused as e:
    assert "strokes must be between 1 and" in str(e), e
heavy = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not heavy, heavy
print("OK")
"""


def test_the_addon_validates_requests_offline_without_torch_pil_or_open_clip():
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), (r.stdout[-1500:], r.stderr[-3000:])
