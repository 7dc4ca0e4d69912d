"""Example 2: deform the teapot until its silhouette (seen from azimuth 90) is the target's."""
import argparse

import torch

import tritonnmr as nr
from tritonnmr.apps.fitting import fit_shape
from tritonnmr.apps.media import load_image, save_gif

parser = argparse.ArgumentParser()
parser.add_argument("--iterations", type=int, default=300)
parser.add_argument("--image-size", type=int, default=256)
args = parser.parse_args()

device = "cuda" if torch.cuda.is_available() else "cpu"
vertices, faces = nr.load_obj(nr.data_path("teapot.obj"))
target = load_image(nr.data_path("example2_ref.png"), args.image_size).mean(0)  # (S, S) in [0, 1]
result = fit_shape(target, vertices[None].to(device), faces[None].to(device),
                   iterations=args.iterations, lr=0.001, image_size=args.image_size)
nr.save_obj("example2_result.obj", result.vertices[0], faces)
save_gif("example2_optimization.gif", result.frames)
print(result.summary)
