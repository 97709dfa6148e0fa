"""The bed's Compose (Debian's docker-compose 1.29) with the race in its exit status closed; run as
`python3 compose_v1.py ARGS...` by the `docker-compose` that conftest's `race_free_compose_path` puts first on PATH.

`up --abort-on-container-exit` follows each container with a log-tailer thread, and compose's event thread
drops that tailer from the followed set at the container's `die` (or `stop`) event. The printer polls its queue
every 0.1 s: when a poll finds nothing followed before the tailer has queued the container's end, compose
returns without knowing which container ended, exits 0, and leaves out "NAME exited with code N". A script that
exits 1 then "succeeds" in the SDK, and a run's output lacks a line. On a loaded machine the tailer is late
often enough to fail runs (tailer held back 0.3 s: exit 0 in 9 of 11 runs of a container that exits 1; here 0 of 8).
Compose v2+ reports the container's own exit. Here the end events no longer drop a tailer: it leaves the set
once it has queued the end, so compose prints and returns what the container did. (Those events also serve
re-attaching to a restarted container; the SDK's containers never restart.)

A second race ends the same way: the printer drops every tailer thread it finds ended before it checks
whether any is left, and a tailer that queued its container's end and finished just after the printer's
poll found the queue empty is dropped before its lines are read: compose returns 0 (seen once in CI, for a
container that failed at exec). Here a tailer found ended is dropped at the next look, after the printer
has read what it queued.
"""

import sys

from compose.cli import log_printer, main

_watch_events = log_printer.watch_events


def watch_events(thread_map, event_stream, presenters, thread_args):
    ended = ("die", "stop")
    return _watch_events(thread_map, (e for e in event_stream if e["action"] not in ended), presenters, thread_args)


log_printer.watch_events = watch_events
_seen_ended: set = set()


def remove_stopped_threads(thread_map):
    for container_id, tailer in list(thread_map.items()):
        if tailer.is_alive():
            continue
        if container_id in _seen_ended:
            thread_map.pop(container_id, None)
        else:
            _seen_ended.add(container_id)


log_printer.remove_stopped_threads = remove_stopped_threads
sys.argv[0] = "docker-compose"
main.main()
