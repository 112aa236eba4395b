"""The approach of PostHog's Amplitude migration guide, for comparison in benches/pipeline.rs.

Reads Amplitude export files (gzip JSON lines), maps each row the way the guide's script does
(distinct id from user_id or device_id, the event type, the event properties, a few device
fields) and sends it with posthog-python, historical_migration=True, 100 events a batch. Not
part of the product: a baseline for throughput only (the mapping is the guide's, not
docs/MAPPING.md; it also skips the guide's alias call per row, which would only make this
baseline slower).

    python3 posthog_python_baseline.py HOST EXPORT_DIR

Prints one JSON line: rows read, events captured, rows it could not map, seconds.
"""

import datetime
import gzip
import json
import os
import sys
import time

from posthog import Posthog


def rows(export_dir):
    for root, _dirs, files in sorted(os.walk(export_dir)):
        for name in sorted(files):
            if name.endswith(".json.gz"):
                with gzip.open(os.path.join(root, name), "rt", encoding="utf-8", errors="replace") as lines:
                    yield from lines


def main():
    host, export_dir = sys.argv[1], sys.argv[2]
    client = Posthog(
        "phc_baseline_key",
        host=host,
        historical_migration=True,
        flush_at=100,
        gzip=True,
        # The default queue (10 000) drops events when the sender falls behind; a migration
        # cannot drop anything, so the queue is large enough for the whole export.
        max_queue_size=10_000_000,
    )
    started = time.monotonic()
    read = captured = failed = 0
    for line in rows(export_dir):
        read += 1
        try:
            data = json.loads(line)
            distinct_id = data.get("user_id") or data.get("device_id")
            event_type = data["event_type"]
            if not distinct_id or not event_type:
                raise ValueError("no id or event type")
            properties = dict(data.get("event_properties") or {})
            properties.update(
                {
                    "$os": data.get("device_type"),
                    "$browser": data.get("os_name"),
                    "$browser_version": data.get("os_version"),
                    "$device_id": data.get("device_id"),
                    "$set": data.get("user_properties") or {},
                }
            )
            timestamp = datetime.datetime.strptime(
                data["event_time"][:19], "%Y-%m-%d %H:%M:%S"
            ).replace(tzinfo=datetime.timezone.utc)
            client.capture(
                event_type,
                distinct_id=str(distinct_id),
                properties=properties,
                timestamp=timestamp,
                uuid=data.get("uuid"),
            )
            captured += 1
        except Exception:  # noqa: BLE001 - the guide's script skips rows it cannot map
            failed += 1
    client.flush()
    client.shutdown()
    seconds = time.monotonic() - started
    print(json.dumps({"rows": read, "captured": captured, "failed": failed, "seconds": seconds}))


if __name__ == "__main__":
    main()
