"""Print the translations in a ``seamlessctl --json subscribe`` log: ``show_events.py EVENTS.jsonl``."""

from __future__ import annotations

import json
import sys


def main(path: str) -> None:
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            event = json.loads(line)
            if event.get("event") != "text":
                continue
            total_ms = event.get("timings_ms", {}).get("total", 0.0)
            print(f"  {event['target_lang']}: {event['text']!r} ({event['duration_s']} s of speech, "
                  f"translated in {total_ms:.0f} ms)")


if __name__ == "__main__":
    main(sys.argv[1])
