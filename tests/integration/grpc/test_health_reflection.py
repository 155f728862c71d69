"""Standard health checking and server reflection, so that ``grpcurl`` and load balancers work without our .proto."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from tests.integration.grpc.helpers import Exchange, run_exchange
from transports.codec.proto_codec import pb
from transports.grpc.settings import SERVICE_NAME


def test_health_is_serving_for_the_server_and_the_exchange_service() -> None:
    async def scenario(ex: Exchange) -> None:
        health = health_pb2_grpc.HealthStub(ex.channel())
        for service in ("", SERVICE_NAME):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        try:
            await health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.NOT_FOUND
        else:
            raise AssertionError("an unknown service must be NOT_FOUND")

    run_exchange(scenario)


def test_reflection_lists_the_service_and_serves_its_schema() -> None:
    def describe(target: str) -> tuple[list[str], list[str]]:
        # The descriptor database is a synchronous client: run it off the event loop that serves.
        with grpc.insecure_channel(target) as channel:
            database = ProtoReflectionDescriptorDatabase(channel)
            file = database.FindFileContainingSymbol(SERVICE_NAME)
            service = next(s for s in file.service if s.name == "Exchange")
            return database.get_services(), [m.name for m in service.method]

    async def scenario(ex: Exchange) -> None:
        services, methods = await asyncio.to_thread(describe, ex.target)
        assert SERVICE_NAME in services and "grpc.health.v1.Health" in services
        assert methods == [m.name for m in pb.DESCRIPTOR.services_by_name["Exchange"].methods]

        # The raw reflection call, as grpcurl makes it.
        stub = reflection_pb2_grpc.ServerReflectionStub(ex.channel())
        call = stub.ServerReflectionInfo()
        await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        reply = await call.read()
        assert isinstance(reply, reflection_pb2.ServerReflectionResponse)
        assert SERVICE_NAME in [s.name for s in reply.list_services_response.service]
        await call.done_writing()

    run_exchange(scenario)
