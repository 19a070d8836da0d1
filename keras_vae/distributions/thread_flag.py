"""A flag that a `with` block turns on for the current thread only: how
tracing code learns which graph it is building (a LiteRT file's, a
training step's) without passing an argument through every layer."""

import contextlib
import threading


class ThreadFlag:
    """`on()`: a context manager that sets the flag in this thread (nested
    blocks restore the outer value); `active()`: whether it is set."""

    def __init__(self):
        self._state = threading.local()

    @contextlib.contextmanager
    def on(self):
        previous = self.active()
        self._state.on = True
        try:
            yield
        finally:
            self._state.on = previous

    def active(self):
        return getattr(self._state, "on", False)
