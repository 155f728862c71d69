"""The ZeroMQ transport: ``dex-zmq`` (ROUTER for orders and queries, XPUB for market data) and ``ZmqClient``.

Frames carry the messages of the one wire schema (protos/exchange/v1/exchange.proto)
through ``transports.codec.proto_codec``; the frame layout is in ``protocol.py``
and docs/zmq.md.
"""
