"""What every protobuf transport client keeps about the listed instruments, and how it uses them.

Writing and reading decimal prices and quantities needs each symbol's tick
and lot size, so a client fetches the instrument list once and keeps it. The
list can grow while the client runs (``add_instrument``); the rules, the same
for every client (zmq, nats, amqp, dht):

* a command naming a symbol the client has not seen makes it fetch the list
  again, once, before the batch is encoded (and a batch that lists an
  instrument itself can name it);
* a reply naming a symbol the client has not seen (a trade or stop on an
  instrument listed since) makes it fetch the list again, once, and decode
  the reply with it;
* an ``InstrumentAdded`` event in a reply is learned at once.

``fetch`` is the transport's own way of asking the server for its
``InstrumentList`` (protobuf bytes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence

from engine import AddInstrument, Command, Instrument, InstrumentAdded, MalformedMessage, RejectReason
from transports.codec.json_codec import InstrumentLookup
from transports.codec.proto_codec import decode_instruments, decode_market_data, decode_replies, encode_commands, pb
from transports.core.client import Replies
from transports.core.marketdata import BookSnapshot


class InstrumentsCache:
    def __init__(self, fetch: Callable[[], Awaitable[bytes]]) -> None:
        self._fetch = fetch
        self.by_symbol: dict[str, Instrument] = {}

    @property
    def lookup(self) -> InstrumentLookup:
        return self.by_symbol.get

    async def refresh(self) -> list[Instrument]:
        """The server's list now (and keep it)."""
        instruments = decode_instruments(await self._fetch())
        self.by_symbol = {i.symbol: i for i in instruments}
        return instruments

    async def know(self, symbols: Iterable[str]) -> None:
        """Fetch the list again if any of ``symbols`` is new to this client."""
        if any(s and s not in self.by_symbol for s in symbols):
            await self.refresh()

    async def encode(self, commands: Sequence[Command], batch_id: int) -> tuple[bytes, InstrumentLookup]:
        """The batch's protobuf bytes, and the lookup that encoded it (to decode its reply with)."""
        lookup: InstrumentLookup = self.by_symbol.get
        try:
            return encode_commands(commands, lookup, batch_id).SerializeToString(), lookup
        except MalformedMessage as exc:  # a symbol this client has not seen (yet): ask the server, once
            if exc.reason is not RejectReason.UNKNOWN_SYMBOL:
                raise
        lookup = await self.lookup_for(commands)
        return encode_commands(commands, lookup, batch_id).SerializeToString(), lookup

    async def lookup_for(self, commands: Sequence[Command]) -> InstrumentLookup:
        """The instruments as the server lists them now, plus those the batch itself lists."""
        await self.refresh()
        listing = {c.instrument.symbol: c.instrument for c in commands if isinstance(c, AddInstrument)}
        return {**self.by_symbol, **listing}.get if listing else self.by_symbol.get

    async def decode(self, reply: pb.ReplyBatch | bytes, lookup: InstrumentLookup) -> Replies:
        """Each command's events (a refused batch raises its error); instruments listed by the batch are learned."""
        try:
            replies = decode_replies(reply, lookup)
        except MalformedMessage as exc:
            if exc.reason is not RejectReason.UNKNOWN_SYMBOL:
                raise
            await self.refresh()  # an event names a symbol listed since (a stop, a trade of another's)
            replies = decode_replies(reply, self.by_symbol.get)
        for events in replies:
            for event in events:
                if type(event) is InstrumentAdded:
                    assert isinstance(event, InstrumentAdded)
                    self.by_symbol[event.instrument.symbol] = event.instrument
        return replies

    async def subscribable(self, symbols: Iterable[str]) -> list[str]:
        """``symbols`` without repeats, each one listed (``MalformedMessage`` otherwise): what a subscription may ask for."""
        wanted = list(dict.fromkeys(symbols))
        if not wanted:
            raise MalformedMessage("name the symbols to subscribe to")
        await self.know(wanted)
        for symbol in wanted:
            if symbol not in self.by_symbol:
                raise MalformedMessage(f"unknown symbol {symbol!r}", RejectReason.UNKNOWN_SYMBOL)
        return wanted

    def snapshots(self, frames: Iterable[bytes]) -> list[BookSnapshot]:
        """The ``BookSnapshot`` each frame of a snapshot reply holds (anything else is ``MalformedMessage``)."""
        out = []
        for frame in frames:
            item = decode_market_data(frame, self.by_symbol.get)
            if not isinstance(item, BookSnapshot):
                raise MalformedMessage("a snapshot reply holds a non-snapshot message")
            out.append(item)
        return out
