"""Booleans are not numbers: `iterations: true` must not be read as 1.

pydantic's lax mode turns True into 1 (int) or 1.0 (float). Every config model's base class runs
`refuse_bool_numbers` before validating (a model validator: pydantic allows no field validator on the head's
discriminator), so a boolean is refused wherever the field's type has no `bool` in it
(top level or inside a tuple/list such as crop_size), while floats still accept ints (`lr: 1`) as before.
"""
from __future__ import annotations

import typing
from typing import Any

from pydantic_core import PydanticCustomError


def _allows_bool(annotation: Any) -> bool:
    if annotation is bool or annotation is Any:
        return True
    return any(_allows_bool(arg) for arg in typing.get_args(annotation) if not isinstance(arg, (int, str, float)))


def _has_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    return isinstance(value, (list, tuple)) and any(isinstance(v, bool) for v in value)


# An integer setting beyond a C int is never meant (a count, a width, a number of threads), and past it torch and
# numpy raise OverflowError tracebacks; fields with a bound of their own (seed, iterations) keep theirs.
MAX_INT = 2**31 - 1


def _huge(value: Any) -> Any:
    values = value if isinstance(value, (list, tuple)) else [value]
    return next((v for v in values if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_INT), None)


def _own_bound(field) -> bool:
    return any(hasattr(m, "le") or hasattr(m, "lt") for m in field.metadata)


def refuse_bool_numbers(cls, data: Any) -> Any:
    """A `model_validator(mode="before")` body for the config base classes; the error's ctx names the key. Also
    refuses integers beyond MAX_INT where the field sets no bound of its own."""
    if isinstance(data, dict):
        for key, value in data.items():
            field = cls.model_fields.get(key) if isinstance(key, str) else None
            if field is not None and _huge(value) is not None and not _own_bound(field):
                raise PydanticCustomError("bool_not_number", "{value} is beyond any setting (at most {limit})",
                                          {"key": key, "value": str(_huge(value)), "limit": f"{MAX_INT:,}"})
            if field is not None and _has_bool(value) and not _allows_bool(field.annotation):
                shown = str(value).lower() if isinstance(value, bool) else repr(list(value)).replace(
                    "True", "true").replace("False", "false")
                raise PydanticCustomError("bool_not_number", "expected a number, got {value} (booleans are not numbers)",
                                          {"key": key, "value": shown})
    return data
