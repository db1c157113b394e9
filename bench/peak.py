"""Run a command; write its wall time, peak RSS and exit status as JSON to a file.

Why a separate launcher: Linux charges a child, at exec, with the peak RSS of
the memory it was forked from, so a child of bench/run.py (which holds the
corpus) would report at least run.py's own size. Started from this small
process instead, the command's peak is its own plus at most this launcher's
few MiB, the same for intake and its peer. Standard library only; run with -S.
Usage: python -S bench/peak.py RESULT.json COMMAND [ARG ...]
"""
import json
import os
import subprocess
import sys
import time

result, command = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
child = subprocess.Popen(command)
_, status, usage = os.wait4(child.pid, 0)
seconds = time.perf_counter() - start
code = os.waitstatus_to_exitcode(status)
with open(result, "w") as out:
    json.dump({"seconds": seconds, "peak_rss": usage.ru_maxrss * 1024, "returncode": code}, out)
sys.exit(0)
