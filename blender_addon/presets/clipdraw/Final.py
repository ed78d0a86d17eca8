import bpy
settings = bpy.context.scene.clipdraw
settings.strokes = 256
settings.steps = 1000
settings.canvas = (224, 224)
settings.max_width = 0.0  # the model's own limit
settings.animation = 'KEYFRAMES'
settings.snapshot_every = 10
settings.frames_per_snapshot = 1
