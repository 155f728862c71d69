"""DHT gossip peer-to-peer exchange: DHT discovery, one sequencer per book, Raft-replicated logs (docs/dht.md)."""
