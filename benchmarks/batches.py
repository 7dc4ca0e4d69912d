"""A batch of different meshes in one call (a list, padded inside) vs the same meshes one by one.

    .venv/bin/python -m benchmarks.batches [--sizes 64 256] [--repeats 5] [--backends torch numba]

The meshes: the bundled teapot (2,464 faces), a UV sphere of about 10k faces
(:func:`tritonnmr.bench.uv_sphere`, scaled by 0.9) and a tetrahedron (4 faces); each seen by the same
look_at camera (distance 2.732, elevation 30, azimuth 45), anti-aliased, RGB with texture cubes
T = 2, loss = sum of rgb and alpha. "batch" renders ``[teapot, sphere, tetrahedron]`` as lists of
per-mesh tensors in one call (padded to the sphere's face count inside, padding rows -1); "one by
one" makes three calls of batch 1. Forward, and forward + backward (gradients to the vertices and
the textures).

Every number is process CPU time (``time.process_time``) on one thread (torch and numba set to
one), the median of ``--repeats`` runs after a warm-up; batch and one-by-one runs alternate within
one process, so the ratio compares like with like on a busy machine. Prints a Markdown table, with
each mesh's own time (from the one-by-one runs).
"""
import argparse
import statistics
import time

import torch

import tritonnmr as nr
from tritonnmr import backends, bench

EYE = (nr.DEFAULT_DISTANCE, 30, 45)  # distance, elevation, azimuth


def meshes():
    """[(name, vertices (V, 3), faces (F, 3) int64)]: the teapot, a ~10k-face sphere, a tetrahedron."""
    teapot = nr.load_obj(nr.data_path("teapot.obj"), device="cpu")
    sphere_v, sphere_f = bench.uv_sphere(10_000)
    tetra_v = torch.tensor([[1.0, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) * 0.5
    tetra_f = torch.tensor([[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]])
    return [("teapot", *teapot), ("sphere", sphere_v * 0.9, sphere_f), ("tetrahedron", tetra_v, tetra_f)]


def steps(backend, size, passes):
    """(batched step, [one step per mesh]): the batch renders the three meshes in one call, the
    others one mesh each (and each runs its backward)."""
    renderer = nr.Renderer(image_size=size, camera_mode="look_at", backend=backend)
    renderer.eye = nr.get_points_from_angles(*EYE)
    g = torch.Generator().manual_seed(0)
    backward = passes == "forward+backward"
    mesh = meshes()
    vertices = [v.clone().requires_grad_(backward) for _, v, _ in mesh]
    faces = [f for _, _, f in mesh]
    textures = [torch.rand(f.shape[0], 2, 2, 2, 3, generator=g).requires_grad_(backward) for f in faces]

    def finish(loss):
        if backward:
            loss.backward()
            for t in vertices + textures:
                t.grad = None

    def batched():
        rgb, _, alpha = renderer(vertices, faces, textures)
        finish(rgb.sum() + alpha.sum())

    def single(i):
        def step():
            rgb, _, alpha = renderer(vertices[i][None], faces[i][None], textures[i][None])
            finish(rgb.sum() + alpha.sum())
        return step

    return batched, [single(i) for i in range(len(mesh))]


def cpu_ms(step):
    start = time.process_time()
    step()
    return (time.process_time() - start) * 1000


def measure(backend, size, passes, repeats):
    """{"batch_ms", "one_by_one_ms", "ratio", "per_mesh_ms"}: medians of alternating runs (the batch,
    then each mesh alone) after one warm-up each."""
    batched, singles = steps(backend, size, passes)
    batched()
    for step in singles:
        step()
    a, b = [], []
    for _ in range(repeats):
        a.append(cpu_ms(batched))
        b.append([cpu_ms(step) for step in singles])
    batch_ms = statistics.median(a)
    single_ms = statistics.median(sum(row) for row in b)
    per_mesh = [statistics.median(row[i] for row in b) for i in range(len(singles))]
    return dict(batch_ms=batch_ms, one_by_one_ms=single_ms, ratio=batch_ms / single_ms, per_mesh_ms=per_mesh)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 256], help="image sizes (default: 64 256)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs of each (default: 5)")
    p.add_argument("--backends", nargs="+", default=["torch"] + (["numba"] if backends.available("numba") else []),
                   help="CPU backends to time (default: torch, and numba when it imports)")
    args = p.parse_args(argv)
    bench.set_threads(1)
    names = [name for name, _, _ in meshes()]
    faces = ", ".join(f"{name} {f.shape[0]}" for name, _, f in meshes())
    print(f"anti-aliased, RGB (cubes T = 2); faces: {faces}; one thread, process CPU time, median of "
          f"{args.repeats}\n")
    print("| backend | image | passes | batch (list) | one by one | batch / one by one | " +
          " | ".join(f"{n} alone" for n in names) + " |")
    print("|---|---|---|---|---|---|" + "---|" * len(names))
    for backend in args.backends:
        for size in args.sizes:
            for passes in ("forward", "forward+backward"):
                m = measure(backend, size, passes, args.repeats)
                alone = " | ".join(f"{t:,.1f} ms" for t in m["per_mesh_ms"])
                print(f"| {backend} | {size}² | {passes} | {m['batch_ms']:,.1f} ms | {m['one_by_one_ms']:,.1f} ms | "
                      f"{m['ratio']:.2f} | {alone} |", flush=True)


if __name__ == "__main__":
    main()
