"""Example 3: paint the teapot's texture cubes so it looks like the target from every side.

With ``--texture uv`` it paints one 128 x 128 texture image instead, mapped onto the teapot by a
cylindrical projection (the teapot has no uvs of its own; see tritonnmr/apps/uv_projection.py).
"""
import argparse

import torch

import tritonnmr as nr
from tritonnmr.apps.fitting import fit_texture, fit_texture_uv, texture_renderer
from tritonnmr.apps.media import load_image, save_gif, turntable

parser = argparse.ArgumentParser()
parser.add_argument("--iterations", type=int, default=300)
parser.add_argument("--image-size", type=int, default=256)
parser.add_argument("--texture", choices=["cubes", "uv"], default="cubes")
args = parser.parse_args()

device = "cuda" if torch.cuda.is_available() else "cpu"
vertices, faces = nr.load_obj(nr.data_path("teapot.obj"), device=device)
target = load_image(nr.data_path("example3_ref.png"), args.image_size)  # (3, S, S)
fit = fit_texture_uv if args.texture == "uv" else fit_texture
result = fit(target, vertices[None], faces[None], iterations=args.iterations, lr=0.1, image_size=args.image_size)
# cubes (1, F, 4, 4, 4, 3) are saved as an atlas PNG; a UVMap as its uvs and the fitted image
nr.save_obj("example3_result.obj", vertices, faces, result.textures if args.texture == "uv" else result.textures[0])
save_gif("example3_optimization.gif", result.frames)
# the result turning, under the fit's flat light (a default Renderer's lights would show it darker)
save_gif("example3_result.gif", turntable(texture_renderer(args.image_size), vertices[None], faces[None],
                                          result.textures, elevation=0))
print(result.summary)
