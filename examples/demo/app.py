"""relive's bundled demo: a long-running loop holding state you would hate to lose.

Run it under relive (`relive run app.py`), then edit report.py while it runs: the next
tick prints the new text, the tick counter carries on, the pid stays the same.
"""

import os
import time

from report import describe

ticks = 0
print(f"app started, pid {os.getpid()}", flush=True)
while True:
    ticks += 1
    print(f"tick {ticks}: {describe(ticks)}", flush=True)
    time.sleep(0.2)
