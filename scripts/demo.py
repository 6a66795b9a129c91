"""``make demo``: the whole product on real Airflow 3 against the embedded Altinn emulator, in a few minutes.

Starts (all on 127.0.0.1, under the throwaway ``AIRFLOW_HOME`` ``.demo/``, wiped first) the emulator and
Airflow's api-server, scheduler, dag-processor and triggerer with the example DAGs, then runs every example:

1. the event-driven DAG (``AssetWatcher``) is switched on and its watcher starts polling in the triggerer;
2. the sensor DAG is triggered and its sensor defers to the triggerer (no worker slot while it waits);
3. the publish DAG publishes one "batch finished" and 25 "case changed" events, the app-event DAG one app
   event (with a platform access token from the emulator);
4. the sensor is released by the batch event; the watcher starts DAG runs for the case events;
5. the poke-mode sensor DAG finds closed cases in the retained history;
6. the subscription DAG subscribes a local webhook receiver, which gets the validation event and a push;
7. the scheduled ingestion DAG lands NDJSON files per resource, and a second run continues from its cursor;

then prints a summary and stops everything (``KEEP=1`` leaves the UI up until Ctrl-C). A failure names
the step and where its logs are; nothing is left running either way. The steps are also used by the
end-to-end suite (``tests/e2e``), which asserts on what they return (``scripts/scenario.py``).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit

if __package__ in (None, ""):  # run as a script: make ``scripts`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.scenario import INGEST, POLL_INTERVAL, PUBLISH_APP, RESOURCE, SENSOR, Scenario, new_stack
from scripts.stack import REPO, Stack
from scripts.webhook_receiver import WebhookReceiver

T0 = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {message}", flush=True)


class StepFailed(Exception):
    pass


@contextmanager
def step(name: str, stack: Stack) -> Iterator[None]:
    say(f"-> {name}")
    started = time.monotonic()
    try:
        yield
    except Exception as error:  # any failure: name the step, then clean up in main()
        raise StepFailed(f"step '{name}' failed: {error}") from error
    say(f"   done ({time.monotonic() - started:.1f} s)")


def _terminate(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    keep = os.environ.get("KEEP", "0") not in ("", "0", "false", "False")
    home = REPO / ".demo"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # also when started with SIGINT ignored
        signal.signal(signum, _terminate)
    stack = new_stack(home, log=say)
    receiver = WebhookReceiver(home / "webhook-received.ndjson").start()
    scenario = Scenario(stack, receiver)
    results: dict[str, Any] = {}
    code = 0
    finished = False
    try:
        with step("start the emulator and Airflow (api-server, scheduler, dag-processor, triggerer)", stack):
            stack.start()
            say(f"   emulator {stack.emulator_url}, Airflow UI {stack.api_url}, AIRFLOW_HOME {home}")
        with step("wait until the dag-processor has parsed every example DAG", stack):
            scenario.wait_parsed()
        with step("switch on the event-driven DAG and trigger the sensor DAG", stack):
            sensor_run = scenario.start_sensor()
            cursor = scenario.start_watcher()
            say(f"   watcher polling {RESOURCE} from cursor {cursor!r}")
            scenario.wait_deferred(sensor_run)
            say(f"   sensor task is deferred: it waits in the triggerer, run {sensor_run}")
        with step("publish events (publish DAG) and an app event (app-event DAG)", stack):
            app_run = stack.trigger(PUBLISH_APP)
            results["publish"] = scenario.publish()
            assert results["publish"][1] == "success", f"publish DAG run ended {results['publish'][1]}"
            say(
                f"   published {len(scenario.published_batch_ids)} batch + {len(scenario.published_case_ids)} case events"
            )
            state = stack.wait_run(PUBLISH_APP, app_run)
            assert state == "success", f"app-event DAG run ended {state}"
            app_ids = stack.xcom(PUBLISH_APP, app_run, "publish_instance_created")
            scenario.other_events += app_ids
            say(f"   app event {app_ids[0]} published with the platform access token")
        with step("the batch event releases the deferred sensor", stack):
            state = stack.wait_run(SENSOR, sensor_run)
            assert state == "success", f"sensor DAG run ended {state}"
            results["sensor"] = sensor = scenario.sensor_result(sensor_run)
            say(
                f"   sensor returned {len(sensor['events'])} event(s) {sensor['handled']}; trigger fired "
                f"{sensor['fire_latency']:.1f} s after publication, task done {sensor['resume_seconds']:.1f} s later"
            )
        with step("every case event reaches an event-driven (watcher) DAG run", stack):
            runs = scenario.wait_watcher()
            say(f"   {len(scenario.published_case_ids)} case events in {len(runs)} watcher run(s)")
        with step("poke-mode sensor DAG finds closed cases in the history; scheduled ingestion runs", stack):
            ingest_first_run = None
            stack.unpause(INGEST)
            results["poke"] = scenario.run_poke()
            assert results["poke"][1] == "success", f"poke sensor DAG run ended {results['poke'][1]}"
            say(f"   poke sensor returned {results['poke'][2]} events")
            results["ingest1"] = ingest_first_run = scenario.run_ingest(scheduled=True)
            assert ingest_first_run["state"] == "success", f"ingestion run ended {ingest_first_run['state']}"
            for summary in ingest_first_run["summaries"]:
                say(f"   ingested {summary['count']:3d} events of {summary['resource']}")
        with step("subscription DAG: the local receiver is validated and gets a pushed event", stack):
            results["subscriptions"] = sub = scenario.run_subscriptions()
            assert sub["state"] == "success", f"subscription DAG run ended {sub['state']}"
            assert sub["validations"] >= 1, "the receiver got no validation event"
            say(
                f"   receiver {receiver.url}: {sub['validations']} validation event(s), pushed: {sub['pushed']}"
            )
        with step("a second ingestion run continues from the cursor", stack):
            results["ingest2"] = second = scenario.run_ingest(scheduled=False)
            assert second["state"] == "success", f"ingestion run ended {second['state']}"
            for summary in second["summaries"]:
                say(f"   ingested {summary['count']:3d} more events of {summary['resource']}")
        with step("the watcher also sees the pushed event", stack):
            scenario.wait_watcher(timeout=120)
        print_summary(scenario, results, home)
        finished = True
        if keep:
            say(
                f"KEEP=1: the Airflow UI stays up at {stack.api_url} (no login needed); Ctrl-C stops everything"
            )
            while True:
                signal.pause()
    except StepFailed as error:
        code = 1
        say(f"FAILED: {error}")
        say(f"   component logs: {stack.logs}/<component>.log; task logs: {stack.logs / 'airflow'}")
    except KeyboardInterrupt:
        code = 0 if finished else 130  # Ctrl-C is how KEEP=1 ends
        say("stopping on request" if finished else "interrupted")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        say("stopping everything ...")
        receiver.stop()
        stack.stop()
        left = stack.leftover_processes()
        say("all stopped" if not left else f"processes still running: {left}")
    return code


def print_summary(scenario: Scenario, results: dict[str, Any], home: Path) -> None:
    stack = scenario.stack
    stats = stack.emulator_stats()
    watcher_runs = scenario.watcher_runs()
    seen = [event_id for run in watcher_runs for event_id in run["ids"] or []]
    sensor = results["sensor"]
    lines = ["", "=" * 100, "Summary", "=" * 100, "DAG runs:"]
    for dag_id, run_type, state, run_id in scenario.dag_run_table():
        lines.append(f"  {dag_id:42s} {run_type:16s} {state:8s} {run_id}")
    lines += [
        "Events:",
        f"  published: {len(scenario.published_batch_ids)} batch + {len(scenario.published_case_ids)} case "
        f"+ {len(scenario.other_events)} app event; "
        f"emulator holds {stats['events']}",
        f"  consumed by the deferred sensor: {sensor['handled']} (trigger fired {sensor['fire_latency']:.1f} s "
        f"after publication at a {POLL_INTERVAL} s poll interval)",
        f"  reached watcher DAG runs: {len(set(seen))} of {len(scenario.published_case_ids)} case events in "
        f"{len(watcher_runs)} run(s) ({len(seen) - len(set(seen))} duplicate deliveries"
        + (
            f"; {scenario.flushes} event(s) published to flush unconsumed asset events)"
            if scenario.flushes
            else ")"
        ),
        f"  poke sensor returned: {results['poke'][2]} closed cases",
    ]
    for key in ("ingest1", "ingest2"):
        for summary in results[key]["summaries"]:
            lines.append(f"  ingested ({key[-1]}. run): {summary['count']:3d} of {summary['resource']}")
    lines.append(f"NDJSON files under {home / 'lake'}:")
    for key in ("ingest1", "ingest2"):
        for uri, events in results[key]["files"].items():
            lines.append(f"  {unquote(urlsplit(uri).path)}  ({len(events)} events)")
    sub = results["subscriptions"]
    lines += [
        f"Webhook receiver: {sub['validations']} validation event(s), pushed events {sub['pushed']}; "
        f"bodies in {home / 'webhook-received.ndjson'}",
        f"Emulator: {stats['token_grants']} Maskinporten grants, {stats['token_exchanges']} Altinn token "
        f"exchanges, {sum(stats['requests'].values())} requests, {stats['deliveries']} push deliveries",
        f"Airflow UI: {stack.api_url}  (no login needed: every user is an admin in this demo)",
        f"Logs: {stack.logs}",
        "=" * 100,
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
