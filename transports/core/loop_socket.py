"""A synchronous pyzmq socket driven by the asyncio event loop through its file descriptor.

Why not ``zmq.asyncio``: it wraps every send and receive in a Future and a
poller round trip; measured on this 2-core machine (docs/zmq.md), an echo
through a sync socket drained from ``loop.add_reader`` ran 2-3x the messages
per second of ``zmq.asyncio`` and answered in about half the time. The hot
path here pays one ``recv(NOBLOCK)`` per message and nothing else.

The one trap, and the invariant this class keeps: ZeroMQ's ``FD`` is
edge-triggered and signals a change of ``EVENTS``, not "a message is
waiting". So

* a reader drains until ``zmq.Again`` (or, when it stops early to let other
  tasks run, calls ``schedule()`` to come back), and
* after every send, ``rearm()`` checks ``EVENTS``: a send may have processed
  an incoming message's arrival and consumed the edge the reader would have
  woken on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import zmq


class LoopSocket:
    """Calls ``on_readable`` in the event loop whenever ``sock`` may have something to read."""

    def __init__(self, sock: zmq.Socket[Any], on_readable: Callable[[], None], loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.sock = sock
        self.loop = loop if loop is not None else asyncio.get_running_loop()
        self._on_readable = on_readable
        self._fd: int = sock.FD
        self._scheduled = False
        self._closed = False
        self.loop.add_reader(self._fd, self._wake)
        self.schedule()  # messages may have arrived before the reader was registered

    def _wake(self) -> None:
        self._scheduled = False
        if not self._closed:
            self._on_readable()

    def schedule(self) -> None:
        """Run the reader soon, whatever the FD says (it stopped before ``zmq.Again``)."""
        if not self._scheduled and not self._closed:
            self._scheduled = True
            self.loop.call_soon(self._wake)

    def rearm(self) -> None:
        """After a send: run the reader if a message is waiting (the send may have eaten the edge)."""
        if not self._scheduled and not self._closed and cast(int, self.sock.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
            self._scheduled = True
            self.loop.call_soon(self._wake)

    def pause(self) -> None:
        """Stop reading (sends still work); ``close`` later."""
        if not self._closed:
            self._closed = True
            self.loop.remove_reader(self._fd)

    def close(self, linger: int = 0) -> None:
        """Stop reading and close the socket (``linger`` ms for messages already handed to ZeroMQ)."""
        self.pause()
        if not self.sock.closed:
            self.sock.close(linger=linger)

    @property
    def closed(self) -> bool:
        return self._closed
