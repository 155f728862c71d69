"""One robust connection to RabbitMQ, shared by the AMQP client and server.

Invariants:

* ``connect`` either returns a connected ``RobustConnection`` within
  ``timeout`` or raises ``NotConnected("not connected to RabbitMQ at URL: ...")``
  (the URL without its password): never a hang, never a bare socket error.
* After a connection is lost (a broker restart, a dropped socket) aio-pika
  re-opens it, its channels, declared queues/exchanges/bindings and consumers.
  A login the broker refuses (no live key), or a vhost it refuses the user,
  is ``AuthFailure`` (``UNAUTHENTICATED``), not ``NotConnected``.
  The wait between attempts backs off: ``RECONNECT_MIN_S``, doubling per
  failed attempt up to ``RECONNECT_MAX_S``, back to the minimum once connected.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel
from aio_pika.robust_connection import RobustConnection
from aiormq import spec
from aiormq.exceptions import AuthenticationError, ProbableAuthenticationError

from engine import NotConnected
from transports.amqp.settings import CONNECT_TIMEOUT_S, RECONNECT_MAX_S, RECONNECT_MIN_S, redact
from transports.core.signing import AuthFailure


class BackoffRobustConnection(RobustConnection):
    """aio-pika's robust connection, whose fixed reconnect interval becomes an exponential backoff.

    aio-pika reads ``reconnect_interval`` twice per failed attempt (its log line
    and its sleep): each read grows it by sqrt(2), so it doubles per attempt.
    """

    _backoff_s = RECONNECT_MIN_S

    @property
    def reconnect_interval(self) -> float:
        current = self._backoff_s
        self._backoff_s = min(current * 1.4142, RECONNECT_MAX_S)
        return current

    @reconnect_interval.setter
    def reconnect_interval(self, value: float) -> None:
        self._backoff_s = max(float(value), 0.01)

    def reset_backoff(self, *_: Any) -> None:
        self._backoff_s = RECONNECT_MIN_S


def is_refusal(exc: BaseException | None) -> bool:
    """Whether ``exc`` is the broker refusing our user: a failed login, or the user deleted (a revoked key)."""
    if exc is None:
        return False
    if isinstance(exc, AuthenticationError | ProbableAuthenticationError):
        return True
    text = str(exc)
    return "ACCESS_REFUSED - Login was refused" in text or "is deleted" in text or _vhost_refused(text)


def _vhost_refused(text: str) -> bool:
    """The broker closed the connection in answer to Connection.Open: our user may not use the vhost.

    A key's user is created a moment before its permissions (``rabbitmqctl import_definitions`` is not atomic),
    so a login just then passes and the open is refused; aiormq reports only the frame it got instead of OpenOk.
    """
    return "Connection.OpenOk" in text and "Connection.Close" in text


def refused_by_broker(url: str) -> AuthFailure:
    """The broker at ``url`` has no user for this login (no key, a key never issued, or revoked)."""
    return AuthFailure("unknown_key", f"RabbitMQ at {redact(url)} refused this login: no live key (docs/security.md)")


def not_connected(url: str, why: object = "") -> NotConnected:
    detail = f": {why}" if str(why) else ""
    return NotConnected(f"not connected to RabbitMQ at {redact(url)}{detail}")


def strip_name(url: str) -> tuple[str, str | None]:
    """``amqp://...#name`` -> (``amqp://...``, ``name``): the fragment names the exchange on the broker."""
    base, sep, fragment = url.partition("#")
    return base, (fragment or None) if sep else None


async def connect(url: str, timeout: float = CONNECT_TIMEOUT_S, name: str = "dex") -> BackoffRobustConnection:
    try:
        connection = await asyncio.wait_for(
            aio_pika.connect_robust(
                url,
                timeout=timeout,
                reconnect_interval=RECONNECT_MIN_S,
                connection_class=BackoffRobustConnection,
                client_properties={"connection_name": name},
            ),
            timeout + 1.0,
        )
    except asyncio.CancelledError:
        raise
    except TimeoutError as exc:
        raise not_connected(url, f"no answer within {timeout:g}s") from exc
    except Exception as exc:  # aio-pika/aiormq raise OSError, AMQPConnectionError, ... : all mean the same to a caller
        if is_refusal(exc):
            raise refused_by_broker(url) from None
        raise not_connected(url, exc) from exc
    assert isinstance(connection, BackoffRobustConnection)
    connection.reconnect_callbacks.add(connection.reset_backoff)
    return connection


async def publish_raw(
    channel: AbstractChannel, body: bytes, routing_key: str, properties: spec.Basic.Properties, exchange: str = ""
) -> None:
    """Publish through the default exchange on ``channel``'s current aiormq channel, skipping aio-pika's ``Message``.

    Building an aio-pika ``Message`` per request cost about a quarter of the
    transport's CPU per message; the AMQP properties are the same. On a channel
    in confirm mode this returns once the broker confirmed (``Basic.Ack``) and
    raises ``RuntimeError`` on a ``Basic.Nack``; a lost channel raises
    aiormq's exceptions, as aio-pika's ``publish`` does.
    """
    underlay = await channel.get_underlay_channel()
    result = await underlay.basic_publish(body, exchange=exchange, routing_key=routing_key, properties=properties)
    if result is not None and not isinstance(result, spec.Basic.Ack):
        raise RuntimeError(f"the broker did not accept the message ({type(result).__name__})")
