import bpy
settings = bpy.context.scene.clipdraw
settings.method = 'SKETCH'
settings.sketch_strokes = 16
settings.seeds = 3
settings.steps = 2000
settings.canvas = (224, 224)
settings.animation = 'KEYFRAMES'
settings.snapshot_every = 10
settings.frames_per_snapshot = 1
