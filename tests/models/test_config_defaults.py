"""A head built without the config system has the same defaults as its config class."""
import inspect

import pytest

from baselines import FCNHead, FPNHead, OCRHead, PPMHead
from bench.config.model import AuxHeadConfig, FCNHeadConfig, FPNHeadConfig, IFAHeadConfig, OCRHeadConfig, PPMHeadConfig
from bench.config.formulation import ran_formulation
from ifa import IFAHead

ASSEMBLY_ONLY = {"name", "enabled", "weight"}  # config fields consumed by build_segmentor, not the module


@pytest.mark.parametrize("head, config", [(IFAHead, IFAHeadConfig), (FPNHead, FPNHeadConfig), (PPMHead, PPMHeadConfig),
                                          (OCRHead, OCRHeadConfig), (FCNHead, AuxHeadConfig),
                                          (FCNHead, FCNHeadConfig)])
def test_module_defaults_equal_config_defaults(head, config):
    params = inspect.signature(head.__init__).parameters
    for name, field in config.model_fields.items():
        if name in ASSEMBLY_ONLY:
            continue
        assert name in params, f"{head.__name__} has no argument {name!r}"
        default = params[name].default
        expected = field.default
        if name == "formulation":  # the config's "auto" is built as on the CPU (bench.models.build.build_head)
            expected = ran_formulation(expected, "cpu")
        assert (tuple(default) if isinstance(default, list) else default) == expected, name
