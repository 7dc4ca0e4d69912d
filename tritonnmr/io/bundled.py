"""The data files that come with the package (the teapot, the examples' targets, a textured model)."""
import os

DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data")


def data_path(name: str) -> str:
    """Path of a bundled data file (teapot.obj, example2_ref.png, ...)."""
    return os.path.join(DATA_DIR, name)
