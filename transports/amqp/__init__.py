"""RabbitMQ (AMQP 0-9-1) transport: RPC order path with publisher confirms, topic-exchange market data (docs/amqp.md)."""
