"""The project's one YAML loader (bench/config/loading.py): duplicate keys, encodings, and no other loader."""
import re
from pathlib import Path

import pytest

from bench.config import parse_yaml, read_yaml
from bench.errors import UserError

ROOT = Path(__file__).resolve().parents[2]


def test_duplicate_key_names_key_and_both_lines(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text("train:\n  iterations: 30\n  lr: 0.1\n  iterations: 5\n")
    with pytest.raises(UserError, match=r"e\.yaml: duplicate key 'iterations' \(line 2 and line 4\)"):
        read_yaml(path)


def test_duplicate_key_in_a_list_item_and_at_top_level():
    with pytest.raises(UserError, match=r"duplicate key 'miou_ss' \(line 2 and line 3\)"):
        parse_yaml("results:\n  - {miou_ss: 1,\n     miou_ss: 2}\n", "p.yaml")
    with pytest.raises(UserError, match=r"p\.yaml: duplicate key 'results' \(line 1 and line 2\)"):
        parse_yaml("results: [1]\nresults: []\n", "p.yaml")


def test_distinct_keys_and_merge_keys_still_load():
    assert parse_yaml("a: 1\nb: {a: 2}\n") == {"a": 1, "b": {"a": 2}}
    text = "base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  x: 3\n"
    assert parse_yaml(text)["other"] == {"x": 3, "y": 2}


def test_unsafe_tags_are_refused():
    with pytest.raises(UserError, match="malformed YAML"):
        parse_yaml("!!python/object/apply:os.system ['true']\n", "x.yaml")


@pytest.mark.parametrize("content, message", [
    ("a: 1\n".encode("utf-16"), "is UTF-16 or UTF-32 encoded"),
    ("a: 1\n".encode("utf-16-be"), "is a binary file"),
    (b"\x00\x01\x02", "is a binary file"),
    ("a: caf\xe9\n".encode("latin-1"), r"is not UTF-8 text \(byte 0xe9 at offset 6\)"),
])
def test_non_utf8_files_are_one_line(tmp_path, content, message):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message) as info:
        read_yaml(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_utf8_with_bom_loads(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffname: caf\xe9\n".encode("utf-8"))
    assert read_yaml(path) == {"name": "caf\xe9"}


def test_published_yaml_goes_through_the_loader(tmp_path):
    from reports.regression.published import load_published

    path = tmp_path / "p.yaml"
    path.write_text("results:\n  - {dataset: Cityscapes, method: FPN, backbone: R-50, kind: published, source: s,\n"
                    "     miou_ss: 70.0, miou_ss: 80.0}\n")
    with pytest.raises(UserError, match="duplicate key 'miou_ss'"):
        load_published(path)


def test_no_other_yaml_load_in_the_code_base():
    """Every YAML read goes through bench/config/loading.py: no yaml.load/safe_load/full_load/unsafe_load/
    load_all or Loader= elsewhere in the shipped code."""
    pattern = re.compile(r"\byaml\.(safe_load|load|full_load|unsafe_load|load_all|safe_load_all|"
                         r"full_load_all|unsafe_load_all)\b|\bLoader\s*=")
    allowed = {ROOT / "bench" / "config" / "loading.py"}
    offenders = []
    for folder in ("bench", "reports", "scripts", "benchmarks", "ifa", "baselines"):
        for path in (ROOT / folder).rglob("*.py") if (ROOT / folder).is_dir() else []:
            if path in allowed:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "YAML read outside bench/config/loading.py:\n" + "\n".join(offenders)


@pytest.mark.parametrize("text", ["x: &x {<<: *x}\n", "y: &y [*y]\n", "a: &a {b: [1, {c: *a}]}\n"],
                         ids=["merge-itself", "list-itself", "nested-itself"])
def test_an_alias_inside_the_value_it_names_is_one_line(text):
    """A RecursionError traceback before: the alias count walked the cycle for ever."""
    with pytest.raises(UserError, match=r"^e\.yaml: line 1: an alias refers to the value that holds it"):
        parse_yaml(text, "e.yaml")


def test_alias_chains_nesting_deeper_than_the_text_are_refused():
    """Each line nests one level (the text is 2 deep), the aliases 600: a RecursionError later, before."""
    chain = "a0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 600))
    with pytest.raises(UserError, match=r"its aliases nest more than 64 levels deep"):
        parse_yaml(chain, "e.yaml")
    shallow = "a0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 60))
    value, levels = parse_yaml(shallow, "e.yaml")["a59"], 0
    while isinstance(value, list):
        value, levels = value[0], levels + 1
    assert (value, levels) == (1, 60)
