"""Example 4: find the camera position from which the teapot has the target silhouette."""
import argparse

import torch

import tritonnmr as nr
from tritonnmr.apps.camera_picture import EXAMPLE4_GREY, camera_fit_frames
from tritonnmr.apps.fitting import fit_camera
from tritonnmr.apps.media import load_image, save_gif

parser = argparse.ArgumentParser()
parser.add_argument("--iterations", type=int, default=300)
parser.add_argument("--image-size", type=int, default=256)
args = parser.parse_args()

device = "cuda" if torch.cuda.is_available() else "cpu"
vertices, faces = nr.load_obj(nr.data_path("teapot.obj"))
image = load_image(nr.data_path("example4_ref.png"), args.image_size)
target = (image.max(0).values > 0).float()                  # the teapot's silhouette
true_eye = nr.get_points_from_angles(nr.DEFAULT_DISTANCE, 30, -15)   # where example4_ref.png was seen from
result = fit_camera(target, vertices[None].to(device), faces[None].to(device),
                    iterations=args.iterations, lr=0.1, image_size=args.image_size, start=(6.0, 10.0, -14.0),
                    true_eye=true_eye)
save_gif("example4_optimization.gif", result.frames)   # yellow: fitted silhouette, blue: target
save_gif("example4_result.gif", camera_fit_frames(vertices[None].to(device), faces[None].to(device), result.path,
                                                  image, args.image_size, true_eye=true_eye,
                                                  grey=EXAMPLE4_GREY))  # the teapot's grey in the target
print(result.summary)
