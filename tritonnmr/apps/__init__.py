"""The applications, one layer above the library: the command line (``cli``, ``cli_common``), the
fitting loop and its media (``fitting``, ``media``, ``camera_picture``), style transfer and DeepDream
(``editing``) and single-image reconstruction (``reconstruction``).

They use the library (``tritonnmr``) and the measurement layer (``tritonnmr.bench``) and nothing below
imports them (``tests/test_layout.py``).
"""
