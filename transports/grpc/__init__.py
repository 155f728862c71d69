"""The gRPC transport: ``dex-grpc`` (grpc.aio server of protos/exchange/v1/exchange.proto) and ``GrpcClient``. See docs/grpc.md."""
