"""FIX 4.4 over TCP: ``dex-fix`` (server.py), ``FixClient`` (client.py); session layer in session.py."""
