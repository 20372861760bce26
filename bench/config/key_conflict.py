"""A validation error that a model-level check raises about one of its keys, so that the one-line message names that
key (bench/config/loading.py: `FILE: section.key: message`) and the --set or file that set it."""
from pydantic_core import PydanticCustomError


def key_conflict(key: str, message: str) -> PydanticCustomError:
    return PydanticCustomError("key_conflict", message.replace("{", "{{").replace("}", "}}"), {"key": key})
