"""Shards and fronts (docs/shards.md): one exchange spread over several matching processes.

Not a transport: nothing here is in the registry. A *shard* is a matching
process, the single writer of a set of symbols with its own journal; a
*front* is any set of transport servers holding no book, which routes each
command to its symbol's shard over a local link (ZeroMQ ``ipc://``).

* ``shard_map``: which shard owns which symbol (rendezvous hashing, pins).
* ``link``: the frames between a front and a shard, and the front's end.
* ``shard``: the shard process (``python -m transports.sharding.shard``).
* ``front``: ``FrontGateway``, the gateway every transport server is given at a front.
* ``cluster``: ``turbo-dex --shards N``, which starts the shards and the fronts.
"""
