"""A workflow's id: explicit or its name, validated like a signal id."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from workflows4py import WIO, DefinitionError, Workflow


@dataclass(frozen=True)
class St:
    n: int


step = WIO.pure(St, lambda s: St(s.n + 1))


def test_the_id_defaults_to_the_name_which_defaults_to_the_class_name() -> None:
    class Orders(Workflow[St, St]):
        definition = step

    class Named(Workflow[St, St]):
        name = "order-intake"
        definition = step

    assert (Orders.id, Orders.name) == ("Orders", "Orders")
    assert (Named.id, Named.name) == ("order-intake", "order-intake")


def test_an_explicit_id_is_kept_apart_from_the_name() -> None:
    class Orders(Workflow[St, St]):
        id = "shop/orders.v2"
        definition = step

    assert (Orders.id, Orders.name) == ("shop/orders.v2", "Orders")


@pytest.mark.parametrize("bad", ["", " orders", "orders list", "-x", "x" * 201, "é"])
def test_an_invalid_id_is_a_definition_error(bad: str) -> None:
    with pytest.raises(DefinitionError, match=r"workflow Orders: id .* is not valid"):

        class Orders(Workflow[St, St]):
            id = bad
            definition = step


def test_a_name_that_is_no_valid_id_needs_an_explicit_id() -> None:
    with pytest.raises(DefinitionError, match=r"id \(its name, unless id is set\)"):

        class Orders(Workflow[St, St]):
            name = "Order Intake"
            definition = step

    class Fixed(Workflow[St, St]):
        name = "Order Intake"
        id = "order-intake"
        definition = step

    assert Fixed.id == "order-intake"
