"""A second process for ``tests/test_lifecycle_processes.py``: it opens the test's database
(``WORKFLOWS4PY_TEST_DB``: a SQLite path, or ``postgres:SCHEMA`` with the DSN in
``WORKFLOWS4PY_PG_DSN``) and does one operation, at an instant given so that two processes
do it at once::

    python tests/lifecycle_app.py start-paid ID AT     # start an order with a payment
    python tests/lifecycle_app.py close ID AT          # close a ticket
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from lifecycle_common import Close, Order, Orders, Pay, Tickets, close, pay

from workflows4py import Runtime


def open_runtime() -> Runtime:
    target = os.environ["WORKFLOWS4PY_TEST_DB"]
    if target.startswith("postgres:"):
        dsn = os.environ["WORKFLOWS4PY_PG_DSN"]
        return Runtime.postgres(dsn, [Orders, Tickets], schema=target.removeprefix("postgres:"))
    return Runtime.sqlite(target, [Orders, Tickets])


async def main(action: str, instance_id: str, at: float) -> None:
    async with open_runtime() as runtime:
        await asyncio.sleep(max(at - time.time(), 0))
        if action == "start-paid":
            order = await runtime.start(
                Orders, instance_id, initial_state=Order("pen", 1), signal=(pay, Pay(5))
            )
            print(await order.deliver_signal(pay, Pay(5)), flush=True)
        else:
            ticket = await runtime.get(Tickets, instance_id)
            await ticket.deliver_signal(close, Close("closed elsewhere"))
            print("closed", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
