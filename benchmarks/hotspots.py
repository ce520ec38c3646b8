"""Profile a command with py-spy and print its hotspots (self and inclusive time).

    .venv/bin/python benchmarks/hotspots.py -- .venv/bin/python benchmarks/replay.py \\
        --quick --no-write --backends sqlite

Samples every thread (``--threads``), including threads blocked in the kernel (``--idle``
off by default: a thread waiting on a lock or a socket is not sampled), at ``--rate`` Hz, and
prints the top functions by self and by inclusive share of the samples, per thread. Needs
py-spy (``pip install py-spy``); ``--native`` adds C frames.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
from pathlib import Path

from _common import DEFAULT_DATA_DIR

_FRAME = re.compile(r"^(?P<fn>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def short(frame: str) -> str:
    m = _FRAME.match(frame)
    if m is None:
        return frame
    return f"{m.group('fn')} ({Path(m.group('file')).name})"


def summarize(raw: Path, top: int, only: str | None) -> str:
    by_thread: dict[str, list[tuple[list[str], int]]] = collections.defaultdict(list)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        thread = "all"
        while frames and frames[0].startswith(("thread ", "process ")):
            label = re.sub(r"\(\d+\)|0x[0-9a-f]+|\d{3,}", "", frames[0]).strip()
            thread = label if thread == "all" else f"{thread} / {label}"
            frames = frames[1:]
        by_thread[thread].append(([short(f) for f in frames], int(count)))
    out: list[str] = []
    for thread, stacks in sorted(by_thread.items(), key=lambda kv: -sum(n for _, n in kv[1])):
        total = sum(n for _, n in stacks)
        selfs: collections.Counter[str] = collections.Counter()
        incl: collections.Counter[str] = collections.Counter()
        for frames, n in stacks:
            if not frames:
                continue
            selfs[frames[-1]] += n
            for name in set(frames):
                incl[name] += n
        out.append(f"== {thread}: {total} samples")
        for title, counter in (("self", selfs), ("inclusive", incl)):
            out.append(f"-- {title}")
            shown = 0
            for name, n in counter.most_common():
                if only and only not in name:
                    continue
                out.append(f"{100 * n / total:6.1f}%  {name}")
                shown += 1
                if shown >= top:
                    break
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=1000, help="samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--only", help="show only frames containing this text (e.g. a file)")
    parser.add_argument("--native", action="store_true")
    parser.add_argument("--idle", action="store_true", help="also sample idle threads")
    parser.add_argument(
        "--subprocesses", action="store_true", help="also profile child processes (workers)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_DATA_DIR / "profile.txt")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to profile after --")
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = [py_spy, "record", "--threads", "-r", str(args.rate), "-f", "raw", "-o", str(args.out)]
    record += ["--native"] if args.native else []
    record += ["--idle"] if args.idle else []
    record += ["--subprocesses"] if args.subprocesses else []
    subprocess.run([*record, "--", *command], check=True)
    print(summarize(args.out, args.top, args.only))


if __name__ == "__main__":
    main()
