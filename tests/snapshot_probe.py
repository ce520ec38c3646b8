"""A fresh process that loads one pull-request instance and reports what it saw.

``python tests/snapshot_probe.py BACKEND TARGET SCHEMA KEY ID`` (``BACKEND`` is ``sqlite``,
with ``TARGET`` the file, or ``postgres``, with ``TARGET`` the DSN and ``SCHEMA`` the schema)
prints one JSON object: the instance's state (``repr``) and the log records of the
``workflows4py`` logger at INFO and above (level and message).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workflows4py import DurableRuntime, PostgresRuntime, SqliteRuntime
from workflows4py.examples import pull_request as pr


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[dict[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append({"level": record.levelname, "message": record.getMessage()})


def runtime(backend: str, target: str, schema: str, key: str) -> DurableRuntime[Any, Any]:
    options: dict[str, Any] = {"snapshot_every": 2, "snapshot_key": key}
    if backend == "sqlite":
        return SqliteRuntime(pr.PullRequest, target, initial_state=pr.Empty(), **options)
    return PostgresRuntime(
        pr.PullRequest, target, initial_state=pr.Empty(), schema=schema, **options
    )


async def main(backend: str, target: str, schema: str, key: str, instance_id: str) -> None:
    collect = Collect()
    logger = logging.getLogger("workflows4py")
    logger.addHandler(collect)
    logger.setLevel(logging.INFO)
    async with runtime(backend, target, schema, key) as rt:
        instance = await rt.get_instance(instance_id)
        state = await instance.query_state()
    print(json.dumps({"state": repr(state), "logs": collect.records}))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
