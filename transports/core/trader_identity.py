"""A connection acts for one trader: commands are rewritten to carry that trader.

Servers call ``bind_trader`` with the identity of the connection, so whatever
``trader`` a client writes into a command, it can act only on its own orders.
"""

from __future__ import annotations

from engine import AddInstrument, CancelOrder, Command, MassCancel, PlaceOrder, ReplaceOrder


def bind_trader(command: Command, trader: str) -> Command:
    """``command`` as sent by ``trader`` (the same object when it already is)."""
    if isinstance(command, AddInstrument):
        return command  # operator command; servers decide whether a connection may send it
    if command.trader == trader:
        return command
    if isinstance(command, PlaceOrder):
        return PlaceOrder(
            trader, command.client_order_id, command.symbol, command.side, command.qty, command.price, command.order_type,
            command.tif, command.post_only, command.stop_price, command.stp,
        )  # fmt: skip
    if isinstance(command, CancelOrder):
        return CancelOrder(trader, command.order_id, command.client_order_id)
    if isinstance(command, ReplaceOrder):
        return ReplaceOrder(trader, command.order_id, command.new_price, command.new_qty, command.symbol, command.client_order_id)
    assert isinstance(command, MassCancel)
    return MassCancel(trader, command.symbol)  # a client's mass cancel gives the reason MASS_CANCEL, whatever it wrote
