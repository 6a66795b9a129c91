"""``AltinnEventsIngestOperator``: land everything new for one resource in files, with a durable cursor.

The operator is a thin Airflow shell over the Airflow-free pipeline in ``airflow_provider_altinn_events._ingest``
(planning, files, commits; read that module's docstring for the crash-safety argument). Here: templated
arguments, the destination turned into storage, the hook's client, the task's run id, cancellation on kill,
and the summary returned to XCom.

Everything heavy (httpx, the client, the pipeline, ObjectStoragePath) is imported inside ``execute``:
DAG files import this module on every parse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_altinn_events._arguments import check_int
from airflow_provider_altinn_events._compat import CopyableEvent
from airflow_provider_altinn_events.client._constants import DEFAULT_CONN_ID, MAX_PAGE_SIZE

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_altinn_events._ingest.storage import Storage
    from airflow_provider_altinn_events.client.matching import EventFilter

__all__ = ["AltinnEventsIngestOperator"]


class AltinnEventsIngestOperator(BaseOperator):
    """Copy the events of one Altinn resource that are new since the last run into NDJSON files.

    Each run reads ``GET /events`` from the cursor the previous run committed, writes one CloudEvent per line
    (exactly the attributes Altinn returned) into ``{destination}/{resource}/run={run_id}/part-NNNNN.ndjson``
    (``.gz`` with gzip), writes a ``_manifest.json`` for the run, and moves the cursor in
    ``{destination}/{resource}/_cursor.json``, only ever after the files it covers are completely written.
    A retry of a failed run resumes from its last commit; a rerun (clear) of a finished run re-reads that
    run's own recorded range into the same file names and leaves the cursor alone. See the ingestion guide.

    :param resource: the resource URN, ``urn:altinn:resource:...`` (templated). Map over a list of resources
        with ``.partial(...).expand(resource=[...])``; each gets its own folder and cursor.
    :param destination: the folder to write into (templated): a local path, a ``file://`` URL, an object
        store URL such as ``s3://aws_default@bucket/prefix`` (the connection id in the URL's user part), or an
        :class:`~airflow.sdk.ObjectStoragePath`. Object stores need the matching Airflow provider installed.
    :param event_types: only these event types (templated; Altinn's ``type`` filter, ``%`` and ``_`` are
        wildcards). One cursor serves one set of filters: use another destination for another filter.
    :param subject: only events about this subject (templated), e.g. ``/party/1234``.
    :param alternative_subject: only events with this alternative subject (templated), e.g.
        ``/person/01017012345``; Altinn refuses it together with ``subject``.
    :param page_size: events per request, 1-1000 (Altinn's maximum, the default).
    :param max_events: read at most this many events per run, so one run cannot run forever; the next run
        continues where this one stopped. ``None`` (default): until Altinn has nothing newer.
    :param start_after: where the very first run starts (templated): ``"0"`` (default) for everything Altinn
        still retains, or an event id. Ignored once a cursor exists.
    :param compression: ``None`` (default) or ``"gzip"``.
    :param events_per_file: events per data file (default 100,000); also the unit of commit: a crash
        re-reads at most one file's worth of events.
    :param dedupe_window: how many recent event ids to remember to drop duplicates within a run
        (default 100,000, about 12 MB); ``0`` keeps every event as delivered.
    :param altinn_events_conn_id: the Altinn Events connection (templated).
    :return: (XCom) ``{"resource", "run_id", "mode", "start_after", "after", "count", "duplicates", "pages",
        "files", "manifest", "cursor_moved", "seconds"}``, never the events themselves.
    """

    template_fields: Sequence[str] = (
        "resource",
        "destination",
        "event_types",
        "subject",
        "alternative_subject",
        "start_after",
        "altinn_events_conn_id",
    )
    ui_color = "#e8eef8"

    def __init__(
        self,
        *,
        resource: str,
        destination: str | ObjectStoragePath,
        event_types: str | Sequence[str] | None = None,
        subject: str | None = None,
        alternative_subject: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        max_events: int | None = None,
        start_after: str = "0",
        compression: str | None = None,
        events_per_file: int = 100_000,
        dedupe_window: int = 100_000,
        altinn_events_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        page_size = check_int(
            page_size, "page_size", minimum=1, maximum=MAX_PAGE_SIZE, why=" (Altinn's page limit)"
        )
        if max_events is not None:
            max_events = check_int(max_events, "max_events", minimum=1)
        events_per_file = check_int(events_per_file, "events_per_file", minimum=1)
        dedupe_window = check_int(dedupe_window, "dedupe_window", minimum=0)
        if compression not in (None, "none", "gzip"):
            from airflow_provider_altinn_events.exceptions import AltinnConfigError

            raise AltinnConfigError(
                f"compression must be None or 'gzip', got {compression!r}", field="compression"
            )
        self.resource = resource
        self.destination = destination
        self.event_types = event_types
        self.subject = subject
        self.alternative_subject = alternative_subject
        self.page_size = page_size
        self.max_events = max_events
        self.start_after = start_after
        self.compression = None if compression == "none" else compression
        self.events_per_file = events_per_file
        self.dedupe_window = dedupe_window
        self.altinn_events_conn_id = altinn_events_conn_id
        self._cancel = CopyableEvent()  # Airflow 3.0 deep-copies operators in dag.test()

    def execute(self, context: Context) -> dict[str, Any]:
        """Ingest, and return the run's summary.

        :raises AirflowFailException: a mistake a retry cannot fix (the error's ``permanent`` flag): a bad
            argument or connection, a 400/403 from Altinn, refused credentials, or a cursor in the destination
            that belongs to other filters or is unreadable.
        :raises IngestConflictError: another ingestion of the same resource and destination moved the cursor
            (not permanent: the other writer may be done by the next try).
        """
        from airflow_provider_altinn_events._boundary import permanent_errors_fail_task
        from airflow_provider_altinn_events._ingest import Filters, IngestSpec, run_ingest
        from airflow_provider_altinn_events.client.scopes import SUBSCRIBE, require_scope
        from airflow_provider_altinn_events.hooks.altinn_events import AltinnEventsHook

        hook = AltinnEventsHook(altinn_events_conn_id=self.altinn_events_conn_id)
        try:
            with permanent_errors_fail_task(lambda error: f"{type(error).__name__}: {error}"):
                spec = IngestSpec(
                    resource=self.resource,
                    filters=Filters.of(self._event_filter()),
                    page_size=self.page_size,
                    max_events=self.max_events,
                    start_after=str(self.start_after or "0"),
                    compression=self.compression,
                    events_per_file=self.events_per_file,
                    dedupe_window=self.dedupe_window,
                )
                require_scope(hook.get_settings(), SUBSCRIBE, operation="reading events (GET /events)")
                result = run_ingest(
                    hook.get_conn(),
                    self._storage(),
                    spec,
                    str(context["run_id"]),
                    log=self.log,
                    cancel=self._cancel,
                )
        finally:
            hook.close()
        return result.to_dict()

    def on_kill(self) -> None:
        """Stop at the next page; what was committed stays, the next try resumes from there."""
        self._cancel.set()

    def _event_filter(self) -> EventFilter:
        """The rendered query filters as an ``EventFilter``, the one normaliser and checker of event types (a
        template that rendered empty means no filter).

        :raises AltinnConfigError: e.g. an empty type in ``event_types``, or ``subject`` with
            ``alternative_subject``.
        """
        from airflow_provider_altinn_events.client.matching import EventFilter

        return EventFilter.from_arguments(
            resource=self.resource,
            event_types=self.event_types or None,
            subject=self.subject or None,
            alternative_subject=self.alternative_subject or None,
        )

    def _storage(self) -> Storage:
        """The destination as storage: local folders directly, anything else through ObjectStoragePath."""
        from airflow_provider_altinn_events._ingest.storage import open_storage

        destination: Any = self.destination
        if isinstance(destination, str):
            destination = destination.strip()
            if "://" in destination and not destination.startswith("file://"):
                from airflow.sdk import ObjectStoragePath

                destination = ObjectStoragePath(destination)
        return open_storage(destination)
