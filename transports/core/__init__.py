"""The transport core: gateway (single writer, journal, market data, stats), the
``TraderClient`` interface every transport client implements, and helpers
shared by all transports. No transport folder imports another."""
