import bpy
settings = bpy.context.scene.clipdraw
settings.model = 'builtin'
settings.strokes = 12  # docs/builtin-model.md, "Twelve strokes, not sixteen"
settings.steps = 200
settings.canvas = (224, 224)
settings.max_width = 0.0  # the model's own limit
settings.animation = 'KEYFRAMES'
settings.snapshot_every = 5
settings.frames_per_snapshot = 1
