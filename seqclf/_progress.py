"""Progress of a training epoch, printed as mini-batches complete.

One line: samples done, samples/s, the mean loss so far and the time left.
On a terminal the line is rewritten in place (carriage return); elsewhere
(a file, a pipe, a notebook's captured stream) each update is a line of its
own. Updates come at most every ``interval`` seconds, and once more when the
epoch is complete, so that a fast epoch does not flood the stream.

Output never fails a fit: where there is no ``sys.stdout`` (``pythonw``,
some services) nothing is shown, and a stream that cannot be written (closed,
a broken pipe) is given up with one :class:`RuntimeWarning`.
"""

import sys
import time
import warnings

# Seconds between two updates of the progress line.
INTERVAL = 0.5


def _is_terminal(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):    # closed or not a file
        return False


def _write(stream, text):
    """Write and flush ``text``; False (with a warning) if the stream fails."""
    try:
        stream.write(text)
        flush = getattr(stream, "flush", None)      # not every writer has it
        if flush is not None:
            flush()
    except (OSError, ValueError, AttributeError) as exc:
        # Closed, a broken pipe, a full disk, or an object with no write.
        warnings.warn(f"The training's verbose output could not be written "
                      f"({type(exc).__name__}: {exc}); training goes on "
                      f"without it.", RuntimeWarning, stacklevel=3)
        return False
    return True


def say(text):
    """Print a line of verbose output to ``sys.stdout``, if there is one
    (``print`` would fail the fit on a closed stream)."""
    stream = sys.stdout
    if stream is not None:
        _write(stream, text + "\n")


def _format_seconds(s):
    s = round(s)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class EpochProgress:
    """Progress display of one epoch.

    Parameters
    ----------
    epoch : int
        The epoch's number, shown first.
    n_samples : int
        Sequences in the epoch.
    stream : file-like, default=None
        Where to write; ``sys.stdout`` at the time of the call by default
        (nothing is shown when that is None). A stream that fails a write
        is given up for the rest of the epoch, with a warning.
    interval : float, default=None
        Least seconds between two updates; :data:`INTERVAL` by default.
    clock : callable, default=time.perf_counter
        Seconds, as a float.
    """

    def __init__(self, epoch, n_samples, stream=None, interval=None,
                 clock=time.perf_counter):
        self.epoch = epoch
        self.n_samples = n_samples
        self.stream = sys.stdout if stream is None else stream
        self.interval = INTERVAL if interval is None else interval
        self.clock = clock
        self.in_place = self.stream is not None and _is_terminal(self.stream)
        self._start = clock()
        self._last = None
        self._width = 0

    def line(self, done, loss_sum, now):
        """The progress text after ``done`` samples of summed loss ``loss_sum``."""
        elapsed = max(now - self._start, 1e-9)
        rate = done / elapsed
        text = (f"Epoch {self.epoch}: {done:,}/{self.n_samples:,} samples "
                f"({100 * done / self.n_samples:.0f}%), {rate:,.0f} samples/s, "
                f"loss = {loss_sum / max(done, 1):.6f}")
        if done < self.n_samples:
            text += f", {_format_seconds((self.n_samples - done) / rate)} left"
        return text

    def update(self, done, loss_sum):
        """Show the progress after ``done`` samples, unless the last update
        was less than ``interval`` seconds ago (the epoch's end is always
        shown)."""
        if self.stream is None:
            return
        now = self.clock()
        if (done < self.n_samples and self._last is not None
                and now - self._last < self.interval):
            return
        self._last = now
        text = self.line(done, loss_sum, now)
        if self.in_place:
            # Pad over the end of a longer previous line.
            text = text.ljust(self._width)
            self._width = len(text)
            text = "\r" + text
        else:
            text += "\n"
        if not _write(self.stream, text):
            self.stream = None

    def close(self):
        """Clear an in-place line, so that the next output starts a line."""
        if self.stream is not None and self.in_place and self._width:
            if not _write(self.stream, "\r" + " " * self._width + "\r"):
                self.stream = None
            self._width = 0
