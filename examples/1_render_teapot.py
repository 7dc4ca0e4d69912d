"""Example 1: render the teapot from 24 azimuths into a turntable GIF."""
import argparse

import torch

import tritonnmr as nr
from tritonnmr.apps.media import save_gif, turntable

parser = argparse.ArgumentParser()
parser.add_argument("--out", default="teapot_turntable.gif")
parser.add_argument("--image-size", type=int, default=256)
args = parser.parse_args()

device = "cuda" if torch.cuda.is_available() else "cpu"
vertices, faces = nr.load_obj(nr.data_path("teapot.obj"))
vertices, faces = vertices[None].to(device), faces[None].to(device)            # add a batch dimension
textures = torch.ones(1, faces.shape[1], 2, 2, 2, 3, device=device)             # white, per-face cubes
renderer = nr.Renderer(image_size=args.image_size, camera_mode="look_at")
save_gif(args.out, turntable(renderer, vertices, faces, textures, frames=24, elevation=30))
print("wrote", args.out)
