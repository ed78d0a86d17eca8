import bpy
settings = bpy.context.scene.clipdraw
settings.strokes = 256
settings.steps = 1000
settings.canvas = (224, 224)
settings.animation = 'KEYFRAMES'
settings.snapshot_every = 10
settings.frames_per_snapshot = 1
