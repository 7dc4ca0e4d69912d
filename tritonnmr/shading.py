"""Shading: turning fragments into colours, pluggable without touching the rasterizer.

A shader is an object with ``shade(fragments, attributes, backend) -> (B, H, W, C)`` colours,
differentiable with respect to its attributes. It receives :class:`tritonnmr.raster.Fragments` (pre-flip maps) and
returns colours for the covered pixels (empty pixels are replaced by the background). The
rasterizer adds the blurred-edge gradient to the faces for any shader, so a shader only cares
about its own attributes. ``lit = True`` asks the Renderer to multiply the colours by each face's
ambient + directional light (the built-in shaders do); a shader of yours is unlit by default.

Three shaders come with ops in every backend: :class:`TextureCubeShader` (the paper's per-face
texture cubes), :class:`VertexColorShader` (per face-vertex attributes, interpolated perspective-
correctly) and :class:`UVTextureShader` (UV-mapped texture images, bilinear). A shader written with
plain torch ops needs nothing else: autograd differentiates it.
"""
import functools
import inspect
from collections import namedtuple

import torch

from . import backends, checks, defaults
from .uvmap import WRAPS, is_uv_pair

PackedUV = namedtuple("PackedUV", ["uvs", "material", "texels", "table", "wrap"])
PackedUV.__doc__ = """UV textures in the layout of the ``sample_uv`` op: uvs (B, F, 3, 2), material
(B, F) int64, texels (N, C) (every material's image, row-major, concatenated), table (M, 3) int64
rows (offset, height, width), wrap 0 REPEAT | 1 MIRRORED_REPEAT | 2 CLAMP_TO_EDGE."""


class _ShadingOp(torch.autograd.Function):
    """``forward(face_index, bary, *attributes, *extra)`` -> colours; ``backward(face_index, bary, grad,
    *attributes, *extra)`` -> the gradient of each attribute (one tensor when there is one attribute);
    where bary needs a gradient (it depends on the faces: gradient="soft"), ``bary_backward(face_index,
    bary, grad, *attributes, *extra)`` -> (..., 3) gives it."""

    @staticmethod
    def forward(ctx, forward, backward, bary_backward, count, face_index, bary, *inputs):
        attributes, extra = inputs[:count], inputs[count:]
        ctx.save_for_backward(face_index, bary, *attributes)
        ctx.backward_op, ctx.bary_op, ctx.extra = backward, bary_backward, extra
        return forward(face_index, bary, *attributes, *extra)

    @staticmethod
    def backward(ctx, grad):
        face_index, bary, *attributes = ctx.saved_tensors
        grad = grad.contiguous()
        grads = (None,) * len(attributes)
        if any(ctx.needs_input_grad[6:6 + len(attributes)]):
            grads = ctx.backward_op(face_index, bary, grad, *attributes, *ctx.extra)
            grads = (grads,) if len(attributes) == 1 else tuple(grads)
        grad_bary = None
        if ctx.needs_input_grad[5] and ctx.bary_op is not None:
            grad_bary = ctx.bary_op(face_index, bary, grad, *attributes, *ctx.extra)
        return (None,) * 5 + (grad_bary,) + grads + (None,) * len(ctx.extra)


def run_op(name: str, fragments: "Fragments", attributes, *extra, backend: str = "auto") -> torch.Tensor:
    """Colours (B, H, W, C) from op ``name`` of the backend chosen for the attributes' device, and their
    gradient from ``name + "_backward"``: ``op(face_index, bary, *attributes, *extra)`` and
    ``op_backward(face_index, bary, grad, *attributes, *extra)`` (the contract's order), where
    ``attributes`` is one tensor or a tuple of them (each gets a gradient) and ``extra`` are the op's
    other arguments. Where ``fragments.bary`` needs a gradient, ``name + "_bary_backward"`` (same
    arguments) gives it, if the op has one. Works for the contract's shading ops and for ops added
    with :func:`tritonnmr.backends.register_op`."""
    attributes = tuple(a.contiguous() for a in (attributes if isinstance(attributes, tuple) else (attributes,)))
    device = attributes[0].device
    forward = backends.op(name, backend, device)
    backward = backends.op(name + "_backward", backend, device)
    bary_backward = backends.op(name + "_bary_backward", backend, device) \
        if fragments.bary.requires_grad and backends.has_op(name + "_bary_backward") else None
    return _ShadingOp.apply(forward, backward, bary_backward, len(attributes), fragments.face_index, fragments.bary,
                            *attributes, *extra)


class Shader:
    """Base class: implement ``shade``; ``check`` validates attributes (once, at the public entry
    point) and ``fill_back`` extends them to the reversed faces that ``fill_back=True`` appends."""

    lit = False

    def check(self, attributes, batch: int, num_faces: int):
        """Validate ``attributes`` for a batch of ``batch`` meshes of ``num_faces`` faces."""
        return attributes

    def fill_back(self, attributes):
        """Attributes for faces + their reversed copies (faces (B, F, 3) -> (B, 2F, 3)). A shader may
        take ``backend`` too (``fill_back(attributes, backend)``, as the cube shader does): the
        Renderer then passes its backend (see :func:`fill_back_attributes`)."""
        raise NotImplementedError(f"{type(self).__name__} does not support fill_back=True; "
                                  "implement fill_back(attributes) or render with fill_back=False")

    def shade(self, fragments, attributes, backend: str = "auto") -> torch.Tensor:
        raise NotImplementedError


class TextureCubeShader(Shader):
    """Per-face texture cubes (B, F, T, T, T, C), sampled trilinearly at
    ``t_k = clamp(bary_k (T - 1), 0, T - 1 - eps)`` (the paper's textures)."""

    lit = True

    def __init__(self, eps: float = defaults.TEXTURE_EPS):
        self.eps = eps

    def check(self, attributes, batch, num_faces):
        return checks.textures(attributes, batch, num_faces)

    def fill_back(self, attributes, backend="auto"):
        # the reversed face (v2, v1, v0) sees cell (i, j, k) of its cube at cell (k, j, i) of the original
        ops = backends.ops_for(backend, attributes.device)
        if hasattr(ops, "fill_back_cubes") and attributes.dtype in (torch.float32, torch.float64):
            return _FillBackCubes.apply(attributes.contiguous(), ops)
        return torch.cat([attributes, attributes.permute(0, 1, 4, 3, 2, 5)], dim=1)

    def shade(self, fragments, attributes, backend="auto"):
        return run_op("sample_cubes", fragments, attributes, self.eps, backend=backend)


class _FillBackCubes(torch.autograd.Function):
    """The cubes of :meth:`TextureCubeShader.fill_back` as one backend pass each way
    (``ops.fill_back_cubes``, the numba backend's): a face's cube and its mirror out, the two
    gradients added back (the copy's plus the mirror's, as torch's cat and permute add them)."""

    @staticmethod
    def forward(ctx, cubes, ops):
        ctx.ops = ops
        return ops.fill_back_cubes(cubes)

    @staticmethod
    @torch.autograd.function.once_differentiable  # a second derivative raises instead of being 0
    def backward(ctx, grad):
        return ctx.ops.fill_back_cubes_backward(grad), None


def fill_back_attributes(shader, attributes, backend: str = "auto"):
    """``shader.fill_back(attributes)``, with ``backend`` where that method (the one called: an
    instance's own, or its class's) takes one."""
    method = shader.fill_back
    function = getattr(method, "__func__", None)  # a method of the class: its signature, once
    takes = _takes_backend(function) if function is not None else _accepts_backend(method)
    return method(attributes, backend=backend) if takes else method(attributes)


def _accepts_backend(function) -> bool:
    try:
        return "backend" in inspect.signature(function).parameters
    except (TypeError, ValueError):  # a builtin or callable without a signature
        return False


_takes_backend = functools.lru_cache(maxsize=256)(_accepts_backend)  # per class function


class VertexColorShader(Shader):
    """Gouraud shading: per face-vertex attributes (B, F, 3, C), any C, interpolated as
    ``sum_k bary_k a_k``. :func:`tritonnmr.vertices_to_faces` turns per-vertex colours (B, V, C) into
    this layout (the Renderer does it for you)."""

    lit = True

    def __init__(self, channels=None):
        self.channels = channels  # None: any number of channels

    def check(self, attributes, batch, num_faces):
        attributes = checks.tensor("textures", attributes, dims=4)
        if attributes.shape[:3] != (batch, num_faces, 3) or \
                (self.channels is not None and attributes.shape[3] != self.channels):
            raise ValueError(f"vertex colours must have shape (B={batch}, F={num_faces}, 3, "
                             f"{self.channels or 'C'}), got {tuple(attributes.shape)}")
        return checks.finite("textures", attributes)

    def fill_back(self, attributes):
        return torch.cat([attributes, attributes.flip(2)], dim=1)

    def shade(self, fragments, attributes, backend="auto"):
        return run_op("interpolate", fragments, attributes, backend=backend)


class UVTextureShader(Shader):
    """UV-mapped textures, bilinearly sampled, with gradients to the texture images and the uvs.

    Attributes: a :class:`tritonnmr.UVMap` (one mesh's uvs (F, 3, 2), per-face material (F,) and a list
    of images (h, w, C), as ``load_obj(..., texture_format="uv")`` returns; shared by the whole
    batch), a list of UVMaps (one per mesh), or a pair ``(uvs (B, F, 3, 2), image (B, h, w, C))``
    (one image per mesh, PyTorch3D's TexturesUV layout). uv (0, 0) is the image's bottom-left
    corner, texel centres sit at ``(j + 0.5) / w``; ``wrap`` is 'REPEAT', 'MIRRORED_REPEAT' or
    'CLAMP_TO_EDGE' for the pair form (a UVMap carries its own).
    """

    lit = True

    def __init__(self, wrap="REPEAT"):
        self.wrap = checks.choice("wrap", wrap, WRAPS)

    def check(self, attributes, batch, num_faces):
        if isinstance(attributes, PackedUV):
            return _check_packed(attributes, batch, num_faces)
        if is_uv_pair(attributes):
            return _pack_pair(*attributes, batch, num_faces, self.wrap)
        maps = attributes if isinstance(attributes, (list, tuple)) else [attributes] * batch
        if len(maps) != batch:
            raise ValueError(f"textures: got {len(maps)} UV maps for a batch of {batch} meshes")
        return _pack_maps(maps, num_faces)

    def fill_back(self, packed):
        return packed._replace(uvs=torch.cat([packed.uvs, packed.uvs.flip(2)], 1),
                               material=torch.cat([packed.material, packed.material], 1))

    def shade(self, fragments, packed, backend="auto"):
        return run_op("sample_uv", fragments, (packed.uvs, packed.texels), packed.material, packed.table, packed.wrap,
                      backend=backend)


def _pack_pair(uvs, image, batch, num_faces, wrap):
    uvs = checks.finite("uvs", checks.tensor("uvs", uvs, dims=4, last=2))
    image = checks.finite("image", checks.tensor("image", image, dims=4))
    checks.same_device(uvs=uvs, image=image)
    if uvs.shape[:3] != (batch, num_faces, 3):
        raise ValueError(f"uvs must have shape (B={batch}, F={num_faces}, 3, 2), got {tuple(uvs.shape)}")
    if image.shape[0] != batch or image.shape[1] < 1 or image.shape[2] < 1 or image.shape[3] < 1:
        raise ValueError(f"image must have shape (B={batch}, h, w, C) with h, w, C >= 1, got {tuple(image.shape)}")
    _, h, w, C = image.shape
    dev = image.device
    table = torch.stack([torch.arange(batch, device=dev) * h * w, torch.full((batch,), h, device=dev),
                         torch.full((batch,), w, device=dev)], 1).long()
    material = torch.arange(batch, device=dev)[:, None].expand(batch, num_faces).contiguous()
    return PackedUV(uvs, material, image.reshape(-1, C), table, WRAPS.index(wrap))


def _check_packed(packed, batch, num_faces):
    """A user-made PackedUV, checked as the sample_uv op needs it: shapes, dtypes, one device, and
    (read with the call's other checks) materials that name table rows and rows that fit the texels."""
    uvs = checks.tensor("textures.uvs", packed.uvs, dims=4, last=2)
    texels = checks.tensor("textures.texels", packed.texels, dims=2)
    material = checks.tensor("textures.material", packed.material, dims=2, floating=False).long()
    table = checks.tensor("textures.table", packed.table, dims=2, last=3, floating=False).long()
    checks.same_device(**{"textures.uvs": uvs, "textures.material": material, "textures.texels": texels,
                          "textures.table": table})
    if uvs.shape[:3] != (batch, num_faces, 3) or material.shape != (batch, num_faces):
        raise ValueError(f"textures: a PackedUV needs uvs (B={batch}, F={num_faces}, 3, 2) and material (B, F), got "
                         f"{tuple(uvs.shape)} and {tuple(material.shape)}")
    if not table.shape[0] or not texels.shape[0] or packed.wrap not in range(len(WRAPS)):
        raise ValueError(f"textures: a PackedUV needs at least one table row and texel, and wrap in 0..{len(WRAPS) - 1}")
    checks.finite("textures.uvs", uvs)
    checks.finite("textures.texels", texels)
    if material.numel():
        checks.fail_if((material < 0).any() | (material >= table.shape[0]).any(),
                       f"textures.material must index the {table.shape[0]} rows of textures.table")
    offset, h, w = table.unbind(1)
    checks.fail_if(((offset < 0) | (h < 1) | (w < 1) | (offset + h * w > texels.shape[0])).any(),
                   f"textures.table rows (offset, h, w) must lie within the {texels.shape[0]} texels")
    return PackedUV(uvs, material, texels, table, int(packed.wrap))


def _texels(uv_map):
    """The map's packed texels (N, C): made again each call while an image needs a gradient (the
    concatenation is part of the graph), else once per set of image versions."""
    if any(im.requires_grad for im in uv_map.images):
        return uv_map.packed_texels()
    key = tuple((id(im), im._version, im.device) for im in uv_map.images)
    memo = getattr(uv_map, "_packed_texels", None)
    if memo is None or memo[0] != key:
        memo = (key, uv_map.packed_texels())
        uv_map._packed_texels = memo
    return memo[1]


def _pack_maps(maps, num_faces):
    """Pack a list of UV maps (one per mesh) into one texel table; a map with fewer faces than the
    batch's (padded) face count gets padding faces of material 0 (they are never drawn). The table
    is built from Python numbers (checks.on_device: no copy once seen) and the texels are cached
    per map (see _texels), so rendering the same maps again copies nothing from the host."""
    uvs, materials, texels, rows, offset, first_row = [], [], [], [], 0, {}
    for i, m in enumerate(maps):
        if not hasattr(m, "uvs") or not hasattr(m, "images"):
            raise TypeError(f"textures[{i}] must be a tritonnmr.UVMap, got {type(m).__name__}")
    wraps = {m.wrap for m in maps}
    if len(wraps) != 1:
        raise ValueError(f"textures: all UV maps of a batch must use one wrap mode, got {sorted(wraps)}")
    for i, m in enumerate(maps):
        if m.uvs.shape[0] > num_faces:
            raise ValueError(f"textures[{i}] has {m.uvs.shape[0]} faces but the meshes have {num_faces}")
        if id(m) not in first_row:  # a map shared by several meshes is packed once
            first_row[id(m)] = len(rows)
            t = _texels(m)
            checks.finite(f"textures[{i}].images", t)
            if texels and t.shape[-1] != texels[0].shape[-1]:
                raise ValueError(f"textures[{i}]: every UV map of a batch needs images with the same channels")
            texels.append(t)
            for im in m.images:
                rows.append((offset, im.shape[0], im.shape[1]))
                offset += im.shape[0] * im.shape[1]
        pad = num_faces - m.uvs.shape[0]
        checks.finite(f"textures[{i}].uvs", m.uvs)
        uvs.append(torch.cat([m.uvs.float(), m.uvs.new_zeros(pad, 3, 2)]) if pad else m.uvs.float())
        materials.append(torch.cat([m.material, m.material.new_zeros(pad)]) + first_row[id(m)] if pad
                         else m.material + first_row[id(m)])
    checks.same_device(**{f"textures[{i}].uvs": u for i, u in enumerate(uvs)},
                       **{f"textures[{i}].material": u for i, u in enumerate(materials)},
                       **{f"textures[{i}].images": t for i, t in enumerate(texels)})
    material = torch.stack(materials)
    return PackedUV(torch.stack(uvs), material, texels[0] if len(texels) == 1 else torch.cat(texels),
                    checks.on_device(tuple(rows), material), WRAPS.index(wraps.pop()))


def attribute_tensors(attributes) -> dict:
    """{name: tensor} of a shader's attributes, for device checks."""
    if torch.is_tensor(attributes):
        return {"textures": attributes}
    if isinstance(attributes, PackedUV):
        return {"textures.uvs": attributes.uvs, "textures.texels": attributes.texels}
    return {}


def as_shader(shader) -> "Shader":
    """``shader`` if it can shade: a :class:`Shader`, or any object with ``shade`` (``check`` and
    ``fill_back`` then default to the base class's)."""
    if isinstance(shader, Shader):
        return shader
    if not callable(getattr(shader, "shade", None)):
        raise TypeError(f"shader must be a tritonnmr.Shader (or have a shade(fragments, attributes, backend) "
                        f"method), got {type(shader).__name__}")
    return _Adopted(shader)


class _Adopted(Shader):
    """An object with a shade method, seen through the Shader interface."""

    def __init__(self, inner):
        self.inner = inner
        self.lit = getattr(inner, "lit", False)

    def check(self, attributes, batch, num_faces):
        check = getattr(self.inner, "check", None)
        return check(attributes, batch, num_faces) if check else attributes

    def fill_back(self, attributes, backend="auto"):
        if getattr(self.inner, "fill_back", None) is None:
            return Shader.fill_back(self, attributes)
        return fill_back_attributes(self.inner, attributes, backend)

    def shade(self, fragments, attributes, backend="auto"):
        return self.inner.shade(fragments, attributes, backend)


def default_shader(textures, eps: float) -> "Shader":
    """The shader for ``textures``: cubes (6-D), face-vertex colours (4-D), or UV maps (a UVMap,
    a list of them, a PackedUV, or a pair (uvs, image))."""
    if torch.is_tensor(textures) and textures.dim() == 4:
        return VertexColorShader()
    if torch.is_tensor(textures):
        return TextureCubeShader(eps)
    if isinstance(textures, PackedUV):
        return UVTextureShader(WRAPS[textures.wrap])
    if hasattr(textures, "uvs"):
        return UVTextureShader(textures.wrap)
    if isinstance(textures, (list, tuple)) and textures and hasattr(textures[0], "uvs"):
        return UVTextureShader(textures[0].wrap)
    if is_uv_pair(textures):
        return UVTextureShader()
    raise TypeError(f"textures must be texture cubes, vertex colours, or UV maps, got {type(textures).__name__}")
