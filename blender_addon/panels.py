"""The sidebar tab (3D Viewport > N > CLIPDraw): prompt, Run/Cancel, progress, and settings sub-panels."""

import bpy
from bl_operators.presets import AddPresetBase
from bpy.types import Context, Menu, Operator, Panel

from . import session

PRESET_SUBDIR = "clipdraw"
# What a preset stores: the method, quality and timing, not what to draw (prompt, images) or where.
PRESET_SETTINGS = ("method", "model", "strokes", "sketch_strokes", "tidy", "sketch_tidy", "seeds", "steps", "canvas",
                   "augmentations",
                   "style_strength", "animation", "snapshot_every", "frames_per_snapshot")


class CLIPDRAW_MT_presets(Menu):
    bl_label = "Presets"
    preset_subdir = PRESET_SUBDIR
    preset_operator = "script.execute_preset"
    preset_add_operator = "clipdraw.preset_add"
    draw = Menu.draw_preset


class CLIPDRAW_OT_preset_add(AddPresetBase, Operator):
    """Add or remove a CLIPDraw settings preset"""

    bl_idname = "clipdraw.preset_add"
    bl_label = "Add CLIPDraw Preset"
    preset_menu = "CLIPDRAW_MT_presets"
    preset_subdir = PRESET_SUBDIR
    preset_defines = ["settings = bpy.context.scene.clipdraw"]
    preset_values = [f"settings.{name}" for name in PRESET_SETTINGS]


def property_column(layout):
    """Blender's own sidebar style: labels left of the fields, no keyframe decorators."""
    layout.use_property_split = True
    layout.use_property_decorate = False
    return layout.column()


class PanelMixin:
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "CLIPDraw"


class CLIPDRAW_PT_main(PanelMixin, Panel):
    bl_label = "Draw with CLIP"
    bl_idname = "CLIPDRAW_PT_main"

    def draw_header_preset(self, context: Context) -> None:
        self.layout.menu(CLIPDRAW_MT_presets.__name__, text=CLIPDRAW_MT_presets.bl_label, icon='PRESET')

    def draw(self, context: Context) -> None:
        layout = self.layout
        settings = context.scene.clipdraw
        col = property_column(self.layout)
        col.prop(settings, "method")
        if settings.method != "SKETCH":  # a sketch draws its image, not a prompt
            col.prop(settings, "prompt")
            col.prop(settings, "negative")
        if settings.method == "STYLE":
            draw_image_input(col, settings.style_image, "Style Image")
            col.prop(settings, "style_strength")
        elif settings.method == "SKETCH":
            draw_image_input(col, settings.source_image, "Source Image")
            col.prop(settings, "show_overlay")
        run = session.current()
        row = layout.row(align=True)
        row.scale_y = 1.4
        if run is None:
            row.operator("clipdraw.run", text="Run", icon='PLAY')
        else:
            row.operator("clipdraw.cancel", text="Cancel", icon='CANCEL')
            layout.progress(factor=run.factor, type='BAR', text=run.status_line().removeprefix("CLIPDraw: "))
        self._draw_last(layout)

    @staticmethod
    def _draw_last(layout) -> None:
        last = session.last_run()
        if session.current() is not None or not last.status:
            return
        box = layout.box()
        if last.error:
            for i, part in enumerate(_wrap(last.error, 60)):
                box.label(text=part, icon='ERROR' if i == 0 else 'BLANK1')
        else:
            box.label(text=f"{last.status.capitalize()}: {last.object_name}", icon='CHECKMARK')


def draw_image_input(layout, choice, label: str) -> None:
    """An image input: the source (Blender image or file), then the picker for that source."""
    layout.prop(choice, "source", text=label, expand=True)
    if choice.source == "IMAGE":
        layout.template_ID(choice, "image", new="image.new", open="image.open")
    else:
        layout.prop(choice, "filepath", text="File")


def _wrap(text: str, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    return lines + ([line] if line else [])


class CLIPDRAW_PT_settings(PanelMixin, Panel):
    bl_label = "Settings"
    bl_parent_id = "CLIPDRAW_PT_main"

    def draw(self, context: Context) -> None:
        settings = context.scene.clipdraw
        col = property_column(self.layout)
        for name in settings_shown(settings.method):
            col.prop(settings, name)
        if settings.method == "SKETCH" and settings.canvas[0] != settings.canvas[1]:
            col.label(text="Image to Sketch needs a square canvas", icon='ERROR')
        self.layout.operator("clipdraw.restore_defaults", icon='LOOP_BACK')


def settings_shown(method: str) -> tuple[str, ...]:
    """The Settings sub-panel's properties for a method (a sketch has its own stroke count)."""
    if method == "SKETCH":
        return ("sketch_strokes", "sketch_tidy", "seeds", "use_mask", "steps", "seed", "canvas", "augmentations",
                "model")
    extra = ("style_weights",) if method == "STYLE" else ()
    return ("strokes", "tidy", "steps", "seed", "canvas", "augmentations", "model", *extra)


class CLIPDRAW_PT_output(PanelMixin, Panel):
    bl_label = "Output"
    bl_parent_id = "CLIPDRAW_PT_main"

    def draw(self, context: Context) -> None:
        settings = context.scene.clipdraw
        col = property_column(self.layout)
        col.prop(settings, "output")
        col.prop(settings, "target")
        col.prop(settings, "placement")
        if settings.placement == "CAMERA":
            col.prop(settings, "camera_distance")
            if context.scene.camera is None:
                col.label(text="The scene has no active camera", icon='ERROR')
        else:
            col.prop(settings, "plane_width")


class CLIPDRAW_PT_animation(PanelMixin, Panel):
    bl_label = "Animation"
    bl_parent_id = "CLIPDRAW_PT_main"

    def draw(self, context: Context) -> None:
        settings = context.scene.clipdraw
        col = property_column(self.layout)
        col.prop(settings, "animation")
        col.prop(settings, "start_frame")
        sub = col.column()
        sub.active = settings.animation == "KEYFRAMES"
        sub.prop(settings, "snapshot_every")
        sub.prop(settings, "frames_per_snapshot")


classes = (CLIPDRAW_MT_presets, CLIPDRAW_OT_preset_add, CLIPDRAW_PT_main, CLIPDRAW_PT_settings,
           CLIPDRAW_PT_output, CLIPDRAW_PT_animation)


register, unregister = bpy.utils.register_classes_factory(classes)
