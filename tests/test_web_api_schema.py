"""schemathesis against the published OpenAPI spec (/api/v1/openapi.json): no server error
and no response outside the spec, over the pull-request example with a few instances."""

from __future__ import annotations

from typing import Any, cast

import schemathesis
from hypothesis import HealthCheck, settings

from workflows4py.examples import pull_request as pr
from workflows4py.runtime import Runtime
from workflows4py.web import create_app

RUNTIME = Runtime.memory([pr.PullRequest])
APP = create_app(RUNTIME)
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", APP)
# valid requests only: the checks that matter here are no server error and every answer
# as the spec documents it (a query's datetime given as a number is read as a timestamp)
schema.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE])


# every health check hypothesis still has (iterating the enum leaves out deprecated ones)
ALL_HEALTH_CHECKS = cast("list[HealthCheck]", list(HealthCheck))


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=ALL_HEALTH_CHECKS)
def test_the_api_keeps_to_its_spec(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate()
