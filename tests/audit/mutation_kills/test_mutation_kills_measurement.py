"""Kill tests for the measurement key of bench/sweep/tasks/measurement.py (issue 32's mutation pass): a payload
without train.device or without an eval section (as older sweep folders' payloads may be) keys and runs exactly as
one with the defaults written out."""
import copy

from bench.sweep.tasks import measurement
from tests.audit.planted.test_measurement_key_and_bundle import _payload


def test_a_missing_device_means_auto():
    full = _payload(gpus=1)
    bare = copy.deepcopy(full)
    del bare["cfg"]["train"]["device"]
    assert measurement.device_kind(bare) == measurement.device_kind(full) == "cuda"
    assert measurement.measure_key(bare) == measurement.measure_key(full)


def test_a_missing_eval_section_keys_as_the_default_query():
    full = _payload(gpus=0)
    assert full["cfg"]["model"]["head"]["name"] == "ifa"
    bare = copy.deepcopy(full)
    del bare["cfg"]["eval"]
    assert measurement.measure_key(bare) == measurement.measure_key(full)
    stride = copy.deepcopy(full)
    stride["cfg"]["eval"]["ifa_query_stride"] = 2  # a query off IFA's own grid is part of the key
    assert measurement.measure_key(stride) != measurement.measure_key(full)
