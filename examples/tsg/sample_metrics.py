"""Take one metrics sample into a SQLite file: the "metrics system" of the example guides.

    python3 examples/tsg/sample_metrics.py METRICS.db [--data-dir DIR --quota-kb N]

Request metrics are a fixed, realistic sample (one endpoint failing more than the rest);
disk usage is measured for real: the bytes under ``--data-dir`` against ``--quota-kb``.
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path

# (endpoint, requests, errors, p99 in ms) for the last five minutes.
REQUESTS = [
    ("/api/orders", 1200, 30, 840.0),
    ("/api/users", 900, 3, 120.0),
    ("/api/search", 650, 2, 310.0),
    ("/health", 300, 0, 4.0),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("database")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--quota-kb", type=int, default=1024)
    options = parser.parse_args()
    with sqlite3.connect(options.database) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS requests "
            "(ts REAL, endpoint TEXT PRIMARY KEY, requests INTEGER, errors INTEGER, p99_ms REAL)"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS disk "
            "(id INTEGER PRIMARY KEY, ts REAL, data_dir TEXT, used_kb INTEGER, used_pct REAL)"
        )
        now = time.time()
        db.executemany(
            "INSERT OR REPLACE INTO requests VALUES (?, ?, ?, ?, ?)", [(now, *row) for row in REQUESTS]
        )
        if options.data_dir is not None:
            used = sum(f.stat().st_size for f in options.data_dir.rglob("*") if f.is_file()) // 1024
            percent = round(100.0 * used / options.quota_kb, 1)
            db.execute(
                "INSERT INTO disk (ts, data_dir, used_kb, used_pct) VALUES (?, ?, ?, ?)",
                (now, str(options.data_dir), used, percent),
            )
            print(f"{options.data_dir}: {used} KB used, {percent}% of {options.quota_kb} KB")
        print(f"sampled {len(REQUESTS)} endpoints into {options.database}")


if __name__ == "__main__":
    main()
