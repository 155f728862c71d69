"""Sequence numbers of FIX sessions, kept across restarts: one small file per session in the server's state dir.

A session is named by the counterparty's SenderCompID (every session's
TargetCompID is the server's own). Its file holds the next inbound sequence
number expected and the next outbound one to send; it is rewritten whole
(temporary file + rename, so a crash leaves the old or the new file, never a
torn one) whenever the numbers changed, at most once per event-loop turn,
and at logout and shutdown. A process killed between two writes restarts
with numbers at most one turn old: the counterparty sees a gap or a number
too low and recovers with ResendRequest / SequenceReset, as FIX intends.

File names are a hash of the SenderCompID (a comp id may hold any printable
character), so no name can escape the directory.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(slots=True)
class SequenceNumbers:
    next_in: int = 1  # the MsgSeqNum expected on the next inbound message
    next_out: int = 1  # the MsgSeqNum of the next outbound message


class SequenceStore:
    """The sequence numbers of every session of one server, under ``directory``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def _path(self, sender: str) -> Path:
        return self.directory / f"{hashlib.sha256(sender.encode()).hexdigest()[:32]}.json"

    def load(self, sender: str) -> SequenceNumbers:
        """The stored numbers of ``sender`` (1 and 1 for a session never seen, or a file that does not read)."""
        try:
            data = json.loads(self._path(sender).read_text())
            numbers = SequenceNumbers(int(data["next_in"]), int(data["next_out"]))
        except (OSError, ValueError, KeyError, TypeError):
            return SequenceNumbers()
        if numbers.next_in < 1 or numbers.next_out < 1:
            return SequenceNumbers()
        return numbers

    def save(self, sender: str, numbers: SequenceNumbers) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(sender)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"sender": sender, "next_in": numbers.next_in, "next_out": numbers.next_out}))
        os.replace(tmp, path)
