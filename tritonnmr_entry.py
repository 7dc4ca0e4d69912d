"""The ``tritonnmr`` command's entry point. It lives outside the tritonnmr package, whose import loads
torch, numba and triton (the first 2-4 s of every command), so that a Ctrl-C while they load ends like
one at any later moment: one line on stderr and exit status 130, no traceback.

Two phases. While the command starts (imports, parsing, loading the libraries it will use), nothing
has been written and nothing needs saving, and some libraries' imports swallow a KeyboardInterrupt
(or fail later on a module it left half-imported): so SIGINT ends the process there and then. Once the
command's work begins, SIGINT raises KeyboardInterrupt as usual, so that a fit or a training run stops
cleanly and keeps what it has; and whatever error stops the command after a SIGINT is reported as the
interruption it is. A KeyboardInterrupt raised inside a callback from C (numba's compiler calls back
into Python through ctypes while it writes its disk cache, and ctypes prints and drops what the callback
raised) is delivered again, to the Python code that runs next.
"""
import _thread
import os
import signal
import sys

INTERRUPTED = 130  # the shell's status for a process stopped by SIGINT (128 + 2)
_sigint = []  # the SIGINTs received once the work began (the handler appends)


def interrupted():
    """Say in one line that the command was interrupted; -> its exit status."""
    print("tritonnmr: interrupted", file=sys.stderr, flush=True)
    return INTERRUPTED


def _while_starting(signum, frame):
    sys.stdout.flush()
    os._exit(interrupted())  # nothing to save yet; skips the imports' own handlers


def _while_working(signum, frame):
    _sigint.append(signum)
    raise KeyboardInterrupt  # as Python's own handler does


def _unraisable(unraisable, default=sys.unraisablehook):
    """sys.unraisablehook: a KeyboardInterrupt of ours that a C callback could not pass on is not printed
    but raised again, as a new SIGINT, where Python code runs next (sent from another thread: sent from
    this one, the handler would run at once, inside this hook, and be dropped again); anything else goes
    to ``default``."""
    if _sigint and issubclass(unraisable.exc_type, KeyboardInterrupt):
        _thread.start_new_thread(_thread.interrupt_main, (signal.SIGINT,))  # does not wait for it to start
        return
    default(unraisable)


def work_begins():
    """Called by the command line once its libraries are loaded: Ctrl-C raises KeyboardInterrupt from now on."""
    if signal.getsignal(signal.SIGINT) is _while_starting:
        signal.signal(signal.SIGINT, _while_working)
        sys.unraisablehook = _unraisable


def main(argv=None):
    signal.signal(signal.SIGINT, _while_starting)
    try:
        from tritonnmr.apps.cli import main as run
        return run(argv)
    except BaseException:
        if _sigint:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while we report
            return interrupted()
        raise


if __name__ == "__main__":
    sys.exit(main())
