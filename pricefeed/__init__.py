"""Price sources (seeded walk, file replay, public tickers) and the publisher onto pub/sub transports."""
