"""Reading OBJ/MTL text: lines, tokens, strict numbers and indices, one-line errors.

OBJ and MTL lines end with ``\\n``, ``\\r\\n`` or a lone ``\\r`` (classic Mac OS files), as Python's
universal newlines read them; no other character ends a line (``str.splitlines`` would also break on
form feed, ``\\x1c``-``\\x1e``, ``\\x85``, ``\\u2028``, ``\\u2029``). Tokens are separated by spaces and
tabs only (``str.split`` would also split on form feed, ``\\x1c``-``\\x1f``, ``\\x85``, ``\\u2028`` ...). A
leading UTF-8 byte-order mark is dropped. Bytes that are not UTF-8 are kept as surrogate escapes, so
names round-trip to the file system unchanged. A token that starts with ``#`` ends the line.
"""
import math
import os
import re

_TOKEN = re.compile(r"[^ \t]+")
_LINE_END = re.compile(r"\r\n|\n|\r")
# ASCII digits only: float() would also take "nan", "inf", "1_0" and non-ASCII digits
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")
# the smallest magnitude that rounds to infinity in float32: the largest float32 plus half an ulp
FLOAT32_OVERFLOW = 2.0 ** 128 - 2.0 ** 103


class ObjError(ValueError):
    """A malformed OBJ or MTL file; the message is one line, ``path:line: problem``."""


def where(path, lineno=None):
    """``path:line`` (or just the path) for error messages."""
    path = one_line(path)
    return f"{path}:{lineno}" if lineno is not None else path


def one_line(text):
    """``text`` with every character that is not printable (line breaks, controls) escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


class Line:
    """One non-empty, non-comment line: ``lineno`` (1-based), ``tokens`` and their start offsets."""

    __slots__ = ("lineno", "text", "tokens", "starts")

    def __init__(self, lineno, text, tokens, starts):
        self.lineno, self.text, self.tokens, self.starts = lineno, text, tokens, starts

    def rest(self, k):
        """The raw text from token ``k`` to the last token (inner spacing kept), or '' if none."""
        if k >= len(self.tokens):
            return ""
        return self.text[self.starts[k]:self.starts[-1] + len(self.tokens[-1])]


def read_lines(path, what):
    """The data lines of a text file as :class:`Line` objects (blank and comment lines dropped).

    Raises FileNotFoundError when ``path`` is not a file, ObjError for UTF-16 text.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ObjError(f"{where(path)}: {what} is UTF-16 text; OBJ and MTL files must be ASCII or UTF-8")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    text = data.decode("utf-8", errors="surrogateescape")
    lines = []
    for lineno, raw in enumerate(_LINE_END.split(text), 1):
        tokens, starts = [], []
        for m in _TOKEN.finditer(raw):
            if m.group().startswith("#"):
                break
            tokens.append(m.group())
            starts.append(m.start())
        if tokens:
            lines.append(Line(lineno, raw, tokens, starts))
    return lines


def numbers(line, path, low, high, form):
    """The ``low``..``high`` numbers after the keyword of ``line`` as Python floats, each finite and
    within float32 range; ``form`` (e.g. "x y z") goes into the error message."""
    key, args = line.tokens[0], line.tokens[1:]
    if not low <= len(args) <= high:
        count = str(low) if low == high else f"{low} to {high}"
        raise ObjError(f"{where(path, line.lineno)}: {key} needs {count} numbers ({key} {form}), got {len(args)}")
    values = []
    for tok in args:
        if not _NUMBER.fullmatch(tok):
            raise ObjError(f"{where(path, line.lineno)}: {key}: {short(tok)!r} is not a number")
        x = float(tok)
        if not math.isfinite(x) or abs(x) >= FLOAT32_OVERFLOW:
            raise ObjError(f"{where(path, line.lineno)}: {key}: {short(tok)} is out of float32 range")
        values.append(x)
    return values


def is_number(tok):
    """Whether ``tok`` is a plain decimal number (ASCII digits, optional sign, point and exponent)."""
    return _NUMBER.fullmatch(tok) is not None


def integer(tok, path, lineno, what):
    """A strict decimal integer (ASCII digits, optional sign, no underscores) of at most 18 digits."""
    if not _INTEGER.fullmatch(tok):
        raise ObjError(f"{where(path, lineno)}: {what}: {short(tok)!r} is not an integer")
    if len(tok.lstrip("+-")) > 18:
        raise ObjError(f"{where(path, lineno)}: {what} {short(tok)} is out of range")
    return int(tok)


def short(tok, limit=40):
    """``tok`` cut to ``limit`` characters (with '...') for error messages."""
    return tok if len(tok) <= limit else tok[:limit] + "..."
