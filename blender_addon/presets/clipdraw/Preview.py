import bpy
settings = bpy.context.scene.clipdraw
settings.strokes = 64
settings.steps = 100
settings.canvas = (224, 224)
settings.max_width = 0.0  # the model's own limit
settings.animation = 'KEYFRAMES'
settings.snapshot_every = 5
settings.frames_per_snapshot = 1
