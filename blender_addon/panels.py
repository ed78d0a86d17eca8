"""The sidebar tab (3D Viewport > N > CLIPDraw): prompt, Run/Cancel, progress, and settings sub-panels
(Settings, Continue from Active, Abstraction Ladder, Keyed Prompts, Output, Animation)."""

import bpy
from bl_operators.presets import AddPresetBase
from bpy.types import Context, Menu, Operator, Panel, UIList

from . import grease_pencil, properties, session

PRESET_SUBDIR = "clipdraw"
# What a preset stores: the method, quality and timing, not what to draw (prompt, images) or where.
PRESET_SETTINGS = ("method", "model", "strokes", "sketch_strokes", "tidy", "sketch_tidy", "seeds", "steps", "canvas",
                   "augmentations", "max_width", "coherence", "boil",
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
            sub = col.column()
            sub.active = not properties.uses_keyed_prompts(settings)  # keyed prompts replace it
            sub.prop(settings, "prompt")
            col.prop(settings, "negative")
        if settings.method == "STYLE":
            draw_image_input(col, settings.style_image, "Style Image")
            col.prop(settings, "style_strength")
        elif settings.method == "SKETCH":
            draw_image_input(col, settings.source_image, "Source Image")
            if settings.source_image.source == "CAMERA":
                draw_camera_source(col, context.scene, settings)
            else:
                col.prop(settings, "show_overlay")
        run = session.current()
        shot = session.rendering()
        row = layout.row(align=True)
        row.scale_y = 1.4
        if shot is not None:
            row.operator("clipdraw.cancel", text="Cancel", icon='CANCEL')
            layout.progress(factor=len(shot.rendered) / max(1, shot.total), type='BAR', text=shot.status_line())
        elif run is None:
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
    """An image input: the source (Blender image, file or, for the source image, the camera), then
    the picker for that source."""
    layout.prop(choice, "source", text=label, expand=True)
    if choice.source == "IMAGE":
        layout.template_ID(choice, "image", new="image.new", open="image.open")
    elif choice.source == "FILE":
        layout.prop(choice, "filepath", text="File")


def draw_camera_source(layout, scene, settings) -> None:
    """The Camera source: which frames, which objects, how the picture is rendered, and the
    sequence's coherence and boil."""
    source = settings.source_image
    layout.prop(source, "use_scene_range")
    sub = layout.column(align=True)
    if source.use_scene_range:
        sub.label(text=f"Frames {scene.frame_start}-{scene.frame_end}"
                       + (f", every {scene.frame_step}" if scene.frame_step > 1 else ""))
    else:
        sub.prop(source, "frame_start")
        sub.prop(source, "frame_end")
        if source.frame_end < source.frame_start:
            sub.label(text="The end is before the start", icon='ERROR')
    layout.prop(source, "mask_collection")
    layout.prop(source, "render_engine")
    layout.prop(settings, "coherence")
    layout.prop(settings, "boil")
    if scene.camera is None or scene.camera.type != 'CAMERA':
        layout.label(text="The scene has no camera", icon='ERROR')


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
        unused = settings_unused(settings)
        for name in settings_shown(settings.method):
            row = col.row()
            row.active = name not in unused
            row.prop(settings, name)
        if settings.method == "SKETCH" and settings.canvas[0] != settings.canvas[1] and "canvas" not in unused:
            col.label(text="Image to Sketch needs a square canvas", icon='ERROR')
        self.layout.operator("clipdraw.restore_defaults", icon='LOOP_BACK')


def settings_shown(method: str) -> tuple[str, ...]:
    """The Settings sub-panel's properties for a method (a sketch has its own stroke count)."""
    if method == "SKETCH":
        return ("sketch_strokes", "sketch_tidy", "seeds", "use_mask", "steps", "seed", "canvas", "augmentations",
                "model")
    extra = ("style_weights",) if method == "STYLE" else ()
    return ("strokes", "tidy", "max_width", "steps", "seed", "canvas", "augmentations", "model", *extra)


def settings_unused(settings) -> set[str]:
    """Settings that other ones override now (shown greyed out): a ladder or a continued drawing
    sets the stroke count, a continued drawing the canvas; ladders and camera sequences never tidy."""
    unused: set[str] = set()
    if settings.continue_active or settings.ladder.strip():
        unused |= {"strokes", "sketch_strokes"}
    if settings.continue_active:
        unused.add("canvas")
    if settings.ladder.strip() or properties.uses_camera(settings):
        unused |= {"tidy", "sketch_tidy"}
    return unused


class CLIPDRAW_PT_continue(PanelMixin, Panel):
    bl_label = "Continue from Active"
    bl_parent_id = "CLIPDRAW_PT_main"
    bl_options = {'DEFAULT_CLOSED'}

    def draw_header(self, context: Context) -> None:
        self.layout.prop(context.scene.clipdraw, "continue_active", text="")

    def draw(self, context: Context) -> None:
        settings = context.scene.clipdraw
        col = property_column(self.layout)
        col.active = settings.continue_active
        col.prop(settings, "keep")
        col.prop(settings, "add_strokes")
        obj = getattr(context, "active_object", None)
        problem = active_problem(obj)
        if problem:
            col.label(text=problem, icon='ERROR')
        else:
            col.label(text=f"From '{obj.name}' at frame {context.scene.frame_current}", icon='OUTLINER_OB_GREASEPENCIL')


def active_problem(obj) -> str:
    """Why the active object cannot be continued ('' when it can); the run says it in full."""
    if obj is None:
        return "No active object"
    if obj.type not in (grease_pencil.object_type(), 'CURVE'):
        return f"'{obj.name}' is not Grease Pencil or curves"
    return ""


class CLIPDRAW_PT_ladder(PanelMixin, Panel):
    bl_label = "Abstraction Ladder"
    bl_parent_id = "CLIPDRAW_PT_main"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context: Context) -> None:
        settings = context.scene.clipdraw
        col = property_column(self.layout)
        col.prop(settings, "ladder")
        try:
            counts = properties.ladder_counts(settings.ladder)
        except ValueError:
            col.label(text="Stroke counts separated by commas, e.g. 64,32,16", icon='ERROR')
            return
        if counts:
            col.label(text=f"{len(counts)} levels, one layer (or object) each: " + " > ".join(map(str, counts)))


class CLIPDRAW_UL_keyed_prompts(UIList):
    """One keyed prompt per row: its frame, then its text."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        row = layout.split(factor=0.3, align=True)
        row.prop(item, "frame", text="")
        row.prop(item, "prompt", text="", emboss=False)


class CLIPDRAW_PT_keyed(PanelMixin, Panel):
    bl_label = "Keyed Prompts"
    bl_parent_id = "CLIPDRAW_PT_main"
    bl_options = {'DEFAULT_CLOSED'}

    @classmethod
    def poll(cls, context: Context) -> bool:
        return context.scene.clipdraw.method != "SKETCH"  # a sketch draws its image, not prompts

    def draw(self, context: Context) -> None:
        settings = context.scene.clipdraw
        row = self.layout.row()
        row.template_list("CLIPDRAW_UL_keyed_prompts", "", settings, "keyed_prompts", settings, "keyed_index", rows=3)
        side = row.column(align=True)
        side.operator("clipdraw.keyed_prompt_add", text="", icon='ADD')
        side.operator("clipdraw.keyed_prompt_remove", text="", icon='REMOVE')
        if len(settings.keyed_prompts):
            self.layout.label(text="These replace the prompt: each one morphs into the next", icon='INFO')
        else:
            self.layout.label(text="Add prompts at frames to morph the drawing from one to the next")


class CLIPDRAW_PT_output(PanelMixin, Panel):
    bl_label = "Output"
    bl_parent_id = "CLIPDRAW_PT_main"

    def draw(self, context: Context) -> None:
        settings = context.scene.clipdraw
        col = property_column(self.layout)
        col.prop(settings, "output")
        col.prop(settings, "target")
        if properties.uses_camera(settings):  # the sketch lies on the camera's view, parented to it
            col.prop(settings, "camera_distance")
            col.label(text="The sketch follows the scene camera", icon='CAMERA_DATA')
            return
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
        keyed = properties.uses_keyed_prompts(settings) or properties.uses_camera(settings)
        ladder = bool(settings.ladder.strip())
        col.active = not ladder  # a ladder keeps its levels, not its forming
        col.prop(settings, "animation")
        sub = col.column()
        sub.active = not keyed  # keyed prompts put their drawings on their own frames
        sub.prop(settings, "start_frame")
        sub = col.column()
        sub.active = settings.animation == "KEYFRAMES"
        sub.prop(settings, "snapshot_every")
        sub = sub.column()
        sub.active = not keyed
        sub.prop(settings, "frames_per_snapshot")
        if properties.uses_camera(settings):
            col.label(text="One drawing per camera frame, on that frame", icon='INFO')
        elif keyed:
            col.label(text="Keyed prompts place the drawings on their frames", icon='INFO')
        elif ladder:
            col.label(text="A ladder keeps one drawing per level", icon='INFO')


classes = (CLIPDRAW_MT_presets, CLIPDRAW_OT_preset_add, CLIPDRAW_PT_main, CLIPDRAW_PT_settings,
           CLIPDRAW_PT_continue, CLIPDRAW_PT_ladder, CLIPDRAW_UL_keyed_prompts, CLIPDRAW_PT_keyed,
           CLIPDRAW_PT_output, CLIPDRAW_PT_animation)


register, unregister = bpy.utils.register_classes_factory(classes)
