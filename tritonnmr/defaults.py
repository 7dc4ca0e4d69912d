"""Every default of the renderer, named once (neural_renderer's values; ``../shared/DESIGN.md``).

The Renderer, the rasterize functions, the shaders, the lights and the cameras take their defaults
from here, so a default is changed in one place.
"""
IMAGE_SIZE = 256
ANTI_ALIASING = True
BACKGROUND_COLOR = (0, 0, 0)
NEAR = 0.1
FAR = 100

# the blurred edge's eps (the distance a move must at least cover, in NDC): neural_renderer's Renderer
# uses its rasterizer_eps for colour renders and for texture-cube sampling, and the rasterize
# functions' own default for silhouettes and depth
RGB_EPS = 1e-3
SILHOUETTE_EPS = 1e-4
TEXTURE_EPS = RGB_EPS  # texture cubes sample at t_k <= T - 1 - eps

# near = 0 is allowed (nothing in front of the camera is culled); faces are then clipped at this
# depth instead, just in front of the eye, where the perspective divide is still finite
MIN_CLIP_DEPTH = 1e-5

LIGHT_INTENSITY_AMBIENT = 0.5
LIGHT_INTENSITY_DIRECTIONAL = 0.5
LIGHT_COLOR = (1, 1, 1)      # of the ambient and of the directional light
LIGHT_DIRECTION = (0, 1, 0)  # light from above

VIEWING_ANGLE = 30.0          # half the field of view, in degrees
CAMERA_DIRECTION = (0, 0, 1)  # camera_mode="look": along +z
ORIG_SIZE = 1024              # camera_mode="projection": the image size K refers to

# the soft rasterizer (gradient="soft"; SoftRas's values): the sigmoid's sharpness sigma (in squared NDC
# units of the shorter image side), the depth softmax's temperature gamma, the background's depth eps
# and the cut-off: a face reaches a pixel outside it while sigmoid(-d^2 / sigma) > SOFT_DIST_EPS
SOFT_SIGMA = 1e-4
SOFT_GAMMA = 1e-4
SOFT_BACKGROUND_DEPTH = 1e-3
SOFT_DIST_EPS = 1e-4
