import bpy
settings = bpy.context.scene.clipdraw
settings.method = 'STYLE'
settings.strokes = 256
settings.steps = 500
settings.canvas = (224, 224)
settings.max_width = 0.0  # the model's own limit
settings.style_strength = 50.0
settings.animation = 'KEYFRAMES'
settings.snapshot_every = 10
settings.frames_per_snapshot = 1
