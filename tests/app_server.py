"""Serve app.py in-process on a free 127.0.0.1 port for the app and browser tests."""
from __future__ import annotations

import contextlib
import socket
import time

from dirac_demo import DiracPipeline


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(pipe: DiracPipeline, workdir: str | None = None, **kwargs):
    """Yield the URL of the demo over ``pipe`` (kwargs go to ``app.build_demo``); the server is closed on exit."""
    import app
    demo = app.build_demo(pipe, workdir, **kwargs)
    app.launch(demo, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield demo.local_url
    finally:
        demo.close()


def slowed(pipe: DiracPipeline, pause: float) -> DiracPipeline:
    """Pause after each DDIM step of ``pipe`` so a browser can watch the steps stream in."""
    frames = pipe.frames

    def slow_frames(*args, **kwargs):
        for frame in frames(*args, **kwargs):
            if frame.k:
                time.sleep(pause)
            yield frame

    pipe.frames = slow_frames
    return pipe
