"""``tritonnmr style`` and ``tritonnmr dream``: edit a mesh through its rendered images."""
import json
import os

from ..cli import UserError, _device, _load_mesh, _out_dir, _target


def _extractor(args, device):
    from .features import VGG16Features
    try:
        return VGG16Features(args.weights or "auto").to(device)
    except (FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None


def _options(args):
    return {"iterations": args.iterations, "image_size": args.image_size, "texture_size": args.texture_size,
            "lambda_content": args.lambda_content, "lambda_tv": args.lambda_tv, "lr_vertices": args.lr_vertices,
            "lr_textures": args.lr_textures, "views": args.views, "backend": args.backend, "seed": args.seed,
            "frame_every": args.frame_every}


def _write(out, result, vertices, faces, args, extra):
    import tritonnmr as nr

    from ..media import save_gif, save_png, turntable
    from .edit import strength
    r = nr.Renderer(image_size=args.image_size, camera_mode="look_at", background_color=(1, 1, 1),
                    backend=args.backend)
    save_gif(os.path.join(out, "before.gif"), turntable(r, vertices, faces))
    after = turntable(r, result.vertices, faces, result.textures)
    save_gif(os.path.join(out, "result.gif"), after)
    save_png(os.path.join(out, "preview.png"), after[0])
    save_gif(os.path.join(out, "optimization.gif"), result.frames)
    nr.save_obj(os.path.join(out, "result.obj"), result.vertices[0].cpu(), faces[0].cpu(), result.textures[0].cpu())
    metrics = dict(result.metrics, **extra, interrupted=result.interrupted)
    with open(os.path.join(out, "metrics.json"), "w") as fh:
        json.dump(metrics, fh, indent=2)
    print(("interrupted; " if result.interrupted else "") + f"{args.command}: {strength(metrics)}")
    print(f"pictures in {out}: before.gif, result.gif, optimization.gif; mesh result.obj (+ .mtl, .png); "
          "numbers in metrics.json")
    return 130 if result.interrupted else 0


def cmd_style(args):
    from ..media import save_png
    from .edit import style_transfer
    from .style_images import STYLES
    device = _device(args.device)
    out = _out_dir(args.out)
    vertices, faces, _ = _load_mesh(args.mesh, device)
    if args.style in STYLES or args.style is None:
        name = args.style or "mosaic"
        style = STYLES[name]()
        save_png(os.path.join(out, f"style_{name}.png"), style)
    else:
        name = args.style
        style = _target(args.style, None)
    extractor = _extractor(args, device)
    result = style_transfer(vertices, faces, style.to(device), extractor, lambda_style=args.lambda_style,
                            **_options(args))
    return _write(out, result, vertices, faces, args, {"style": name, "pretrained": extractor.pretrained,
                                                       "device": str(device)})


def cmd_dream(args):
    from .edit import deep_dream
    from .features import LAYER_NAMES
    device = _device(args.device)
    out = _out_dir(args.out)
    if args.layer is not None and args.layer not in LAYER_NAMES:
        raise UserError(f"--layer {args.layer}: not a VGG-16 layer; choose from {', '.join(LAYER_NAMES)}")
    vertices, faces, _ = _load_mesh(args.mesh, device)
    extractor = _extractor(args, device)
    result = deep_dream(vertices, faces, extractor, layer=args.layer, **_options(args))
    return _write(out, result, vertices, faces, args, {"layer": result.metrics["layer"],
                                                       "pretrained": extractor.pretrained,
                                                       "device": str(device)})


def add_parsers(sub):
    """Register ``style`` and ``dream`` on the main parser's subparsers."""
    def common(sp, out, lambda_content, lr_vertices):
        sp.add_argument("--mesh", help="OBJ to edit (default: the bundled teapot)")
        sp.add_argument("--out", default=out)
        sp.add_argument("--iterations", type=int, default=150)
        sp.add_argument("--image-size", type=int, default=128, help="rendered size fed to VGG-16")
        sp.add_argument("--texture-size", type=int, default=4, help="texture cube size per face")
        sp.add_argument("--weights", help="torchvision VGG-16 state_dict (default: torch's hub cache if present, "
                        "else random features)")
        sp.add_argument("--views", type=int, default=2, help="random viewpoints per step")
        sp.add_argument("--lambda-content", type=float, default=lambda_content,
                        help="weight of the vertices' squared distance to the original")
        sp.add_argument("--lambda-tv", type=float, default=10.0, help="weight of the image's total variation")
        sp.add_argument("--lr-vertices", type=float, default=lr_vertices)
        sp.add_argument("--lr-textures", type=float, default=0.1)
        sp.add_argument("--frame-every", type=int, default=5)
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda if available")
        sp.add_argument("--backend", choices=["auto", "torch", "triton"], default="auto")

    s = sub.add_parser("style", help="2D-to-3D style transfer: paint and shape a mesh like a style image")
    s.add_argument("--style", help="image file, or a generated style: mosaic (default), strokes, sunset")
    s.add_argument("--lambda-style", type=float, default=1.0)
    common(s, "out/style", 2.0, 0.002)
    s.set_defaults(func=cmd_style)

    d = sub.add_parser("dream", help="3D DeepDream: grow what a VGG-16 layer responds to")
    d.add_argument("--layer", default=None, help="VGG-16 layer whose activations are maximised "
                   "(default: relu4_3 with pretrained weights, relu3_3 without)")
    common(d, "out/dream", 2.0, 0.005)
    d.set_defaults(func=cmd_dream)


__all__ = ["add_parsers"]
