"""3D DeepDream: grow on the teapot whatever a VGG-16 layer responds to, in shape and colour.

python examples/deep_dream.py [--layer relu4_3] [--weights vgg16.pth]
Without --weights (a torchvision VGG-16 state_dict) the features are random: see README.md.
"""
import argparse

import torch

import tritonnmr as nr
from tritonnmr.editing import VGG16Features, deep_dream
from tritonnmr.media import save_gif, turntable

parser = argparse.ArgumentParser()
parser.add_argument("--layer", default=None, help="default: relu4_3 (pretrained) or relu3_3 (random)")
parser.add_argument("--weights", default="auto")
parser.add_argument("--iterations", type=int, default=150)
parser.add_argument("--image-size", type=int, default=128)
args = parser.parse_args()

device = "cuda" if torch.cuda.is_available() else "cpu"
vertices, faces = nr.load_obj(nr.data_path("teapot.obj"))
vertices, faces = vertices[None].to(device), faces[None].to(device)
extractor = VGG16Features(args.weights).to(device)

result = deep_dream(vertices, faces, extractor, layer=args.layer, iterations=args.iterations,
                    image_size=args.image_size, lr_vertices=0.005)
nr.save_obj("dream_result.obj", result.vertices[0], faces[0], result.textures[0])
renderer = nr.Renderer(image_size=args.image_size, camera_mode="look_at")
save_gif("dream_result.gif", turntable(renderer, result.vertices, faces, result.textures))
save_gif("dream_optimization.gif", result.frames)
print(result.summary)
