"""tools/mutation_cosmic.py: which cosmic-ray operators the kernels module keeps, and how results become statuses."""
import re

import tomllib

from tools.mutation_cosmic import _config, _status
from tools.mutation_run import MODULES


def _excluded(name: str, config: str) -> bool:
    """cosmic-ray's operators filter: an operator whose name matches one of the patterns (re.match) is skipped."""
    patterns = tomllib.loads(config)["cosmic-ray"]["filters"]["operators-filter"]["exclude-operators"]
    return bool(re.compile("|".join(f"(:?{p})" for p in patterns)).match(name))


def test_only_the_listed_operators_run():
    module = MODULES["kernels"]
    file, tests = module.files[0]
    config = _config(module, file, tests)
    assert tomllib.loads(config)["cosmic-ray"]["module-path"] == file
    for kept in ("core/ReplaceComparisonOperator_Lt_LtE", "core/ReplaceBinaryOperator_Add_Sub", "core/AddNot",
                 "core/ZeroIterationForLoop", "core/ReplaceUnaryOperator_USub_UAdd", "core/ReplaceTrueWithFalse"):
        assert not _excluded(kept, config), kept
    for dropped in ("core/NumberReplacer", "core/ReplaceBinaryOperator_Add_LShift",
                    "core/ReplaceComparisonOperator_Lt_Is", "core/ReplaceComparisonOperator_Lt_LtEX",
                    "core/ReplaceUnaryOperator_USub_Invert"):
        assert _excluded(dropped, config), dropped


def test_statuses():
    normal = {"worker_outcome": "normal", "output": ""}
    assert _status(None) == "not checked"
    assert _status({"worker_outcome": "skipped", "test_outcome": None, "output": "Filtered operator"}) is None
    assert _status({**normal, "test_outcome": "killed"}) == "killed"
    assert _status({**normal, "test_outcome": "killed", "output": "timeout"}) == "timeout"
    assert _status({**normal, "test_outcome": "survived"}) == "survived"
    assert _status({**normal, "test_outcome": "incompetent"}) == "error"
    assert _status({"worker_outcome": "exception", "test_outcome": "incompetent", "output": ""}) == "error"
