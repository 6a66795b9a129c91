"""Let common-messaging's ``MessageQueueTrigger(scheme="altinn", ...)`` watch Altinn events.

Registered in the provider info under ``queues`` (as the Kafka, SQS and Pub/Sub providers do). Every keyword
argument given to ``MessageQueueTrigger`` besides ``scheme`` goes to
:class:`~airflow_provider_altinn_events.triggers.altinn_events.AltinnEventsWatcherTrigger` unchanged, and
``MessageQueueTrigger.serialize()`` returns the watcher's own class path, so the triggerer runs our trigger
directly:

.. code-block:: python

    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    trigger = MessageQueueTrigger(scheme="altinn", resource="urn:altinn:resource:my-resource",
                                  event_types=["app.instance.%"], poll_interval=30)

``MessageQueueTrigger`` keeps the keyword arguments and builds the watcher trigger only when it is
serialized (common-messaging offers providers no hook at construction), so the watcher's argument checks run
then: the dag-processor reports a bad ``resource`` as a DAG import error, while a plain ``DagBag`` test has to
serialize the DAG to see it (``docs/guides/event-driven.rst`` shows how).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.providers.common.messaging.providers.base_provider import BaseMessageQueueProvider

if TYPE_CHECKING:
    from airflow.triggers.base import BaseEventTrigger

__all__ = ["AltinnEventsMessageQueueProvider"]


class AltinnEventsMessageQueueProvider(BaseMessageQueueProvider):
    """Dispatch ``scheme="altinn"`` to the Altinn events watcher trigger.

    Only scheme-based dispatch is offered; the deprecated ``queue=`` URI form of ``MessageQueueTrigger``
    matches nothing here, because an Altinn resource URN does not fit in a queue URI without ambiguity.
    """

    scheme = "altinn"

    def trigger_class(self) -> type[BaseEventTrigger]:
        from airflow_provider_altinn_events.triggers.altinn_events import AltinnEventsWatcherTrigger

        return AltinnEventsWatcherTrigger
