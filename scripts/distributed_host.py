"""``[core] hostname_callable`` of ``make distributed``: each component reports its own name as its host.

Airflow records the host of every job and task instance (``job.hostname``, ``task_instance.hostname``);
with this, the metadata DB says which triggerer holds a trigger and which worker ran a task, as it would on
separate machines. Set by scripts/stack.py (``ALTINN_STACK_HOST``); outside it, the real host name.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("ALTINN_STACK_HOST") or socket.getfqdn()
