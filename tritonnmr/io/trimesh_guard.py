"""Calling trimesh, the optional ``io`` extra that reads and writes every mesh format but OBJ.

- :func:`require_trimesh`: the module, or a one-line ImportError saying what to install;
- :func:`quietly`: trimesh's log records and Python warnings are collected instead of shown, and
  floating-point warnings silenced, so that what reaches the user is our own one-line message;
- :func:`failure`: any exception trimesh raised as a one-line ValueError naming the file.

trimesh logs to the ``"trimesh"`` logger. While :func:`quietly` runs, that logger sends its records
(debug ones included, where trimesh reports what it skipped) to a list and not to the handlers of the
application; its level and handlers are restored afterwards.
"""
import contextlib
import logging
import warnings

import numpy as np

from .images import reason
from .text import one_line, short

INSTALL = "pip install 'tritonnmr[io]' (or: pip install trimesh)"
REASON_CHARS = 120  # the longest piece of trimesh's own message an error quotes
# words of trimesh's debug records that say a part of the file was dropped
SKIPPED = ("fail", "unable", "skip", "unsupported", "could not", "cannot")
UNUSED = ("normal",)  # what tritonnmr never reads: trimesh's trouble with it is not reported


def require_trimesh(path, action="reading"):
    """The trimesh module (imported quietly: it logs on import); ImportError ``reading scan.ply needs
    trimesh: pip install ...`` without it."""
    try:
        with quietly():
            import trimesh
    except ImportError:
        raise ImportError(f"{action} {one_line(path)} needs trimesh: {INSTALL}") from None
    return trimesh


class _Collect(logging.Handler):
    """Keeps the messages of records that say something was dropped (warnings and above, records
    carrying a swallowed exception, debug records with one of :data:`SKIPPED`), unless they are
    about what tritonnmr does not read (:data:`UNUSED`)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format
            message = str(record.msg)
        text = message.lower()
        dropped = (record.levelno >= logging.WARNING or record.exc_info or any(w in text for w in SKIPPED)) \
            and not any(w in text for w in UNUSED)
        if dropped:
            self.messages.append(one_line(short(message.strip().splitlines()[0] if message.strip() else "",
                                                REASON_CHARS)))


@contextlib.contextmanager
def quietly():
    """A block in which trimesh prints and logs nothing and warns no one; yields a list that holds,
    once the block ends, the one-line messages of what trimesh reported as dropped and of the warnings
    raised in the block."""
    logger = logging.getLogger("trimesh")
    handler = _Collect()
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    messages = []
    try:
        with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
            warnings.simplefilter("always")
            try:
                yield messages
            finally:
                messages += handler.messages + [one_line(short(str(w.message), REASON_CHARS)) for w in caught]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def failure(path, what, error):
    """ValueError ``path: cannot read this PLY file (trimesh: reason)`` for an exception of trimesh."""
    text = one_line(short(reason(error), REASON_CHARS))
    return ValueError(f"{one_line(path)}: cannot {what} (trimesh: {type(error).__name__}: {text})")


def notice(path, messages):
    """One line for what trimesh dropped while reading ``path``, or None when it dropped nothing."""
    messages = list(dict.fromkeys(m for m in messages if m))  # once each, in order
    if not messages:
        return None
    more = f" (and {len(messages) - 1} more)" if len(messages) > 1 else ""
    return f"{one_line(path)}: trimesh skipped part of the file: {messages[0]}{more}"
