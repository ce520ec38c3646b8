"""The examples, packaged with the library so that they run wherever it is installed.

They are documentation that runs, written as a user would write them (they import the
public API only): ``pull_request`` (signals, a pipeline, a review, merge or reject),
``withdrawal`` with the ``checks`` engine it embeds (timers, retries, interruptions,
embedded workflows), ``timers_inside`` (timers inside for-each elements and embedded
workflows), and ``demo``, the walkthrough ``./scripts/demo`` runs
(``python -m workflows4py.examples.demo``).
"""

__all__: list[str] = []
