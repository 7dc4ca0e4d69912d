"""Example 3: paint the teapot's texture cubes so it looks like the target from every side."""
import argparse

import torch

import tritonnmr as nr
from tritonnmr.fitting import fit_texture, texture_renderer
from tritonnmr.media import load_image, save_gif, turntable

parser = argparse.ArgumentParser()
parser.add_argument("--iterations", type=int, default=300)
parser.add_argument("--image-size", type=int, default=256)
args = parser.parse_args()

device = "cuda" if torch.cuda.is_available() else "cpu"
vertices, faces = nr.load_obj(nr.data_path("teapot.obj"))
target = load_image(nr.data_path("example3_ref.png"), args.image_size)  # (3, S, S)
result = fit_texture(target, vertices[None].to(device), faces[None].to(device),
                     iterations=args.iterations, lr=0.1, image_size=args.image_size, texture_size=4)
nr.save_obj("example3_result.obj", vertices, faces, result.textures[0])
save_gif("example3_optimization.gif", result.frames)
# the result turning, under the fit's flat light (a default Renderer's lights would show it darker)
save_gif("example3_result.gif", turntable(texture_renderer(args.image_size), vertices[None].to(device),
                                          faces[None].to(device), result.textures, elevation=0))
print(result.summary)
