"""Provenance: packages derived from the suites' extras, machine facts once, dirty trees named."""

from __future__ import annotations

import json

import pytest

from suites.harness import provenance


@pytest.fixture
def fake_repo(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "claimbench"\ndependencies = ["torch==2.13.0", "numpy"]\n'
        "[project.optional-dependencies]\n"
        'lora = ["transformers>=5", "scikit-learn"]\nnewsuite = ["sacrebleu>=2; python_version >= \'3.9\'"]\n'
        'cluster = ["ray[default]", "submitit"]\ntest = ["pytest"]\nall = ["claimbench[lora,newsuite,test]"]\n'
    )
    monkeypatch.setattr(provenance, "REPO_ROOT", tmp_path)
    provenance.tracked_packages.cache_clear()
    yield tmp_path
    provenance.tracked_packages.cache_clear()


def test_tracked_packages_come_from_dependencies_and_suite_extras(fake_repo):
    # A suite's new extra is tracked without touching provenance.py; tools (test, cluster) are not.
    assert provenance.tracked_packages() == ("torch", "numpy", "transformers", "scikit-learn", "sacrebleu")


def test_tracked_packages_of_this_checkout():
    tracked = provenance.tracked_packages()
    for name in ("torch", "numpy", "scipy", "transformers", "aeon", "peft"):
        assert name in tracked
    for tool in ("pytest", "nox", "ruff", "ray", "submitit", "claimbench"):
        assert tool not in tracked


@pytest.mark.parametrize(
    ("requirement", "expected"),
    [
        ("ray[default]", ("ray", None)),
        ('ray[default]; extra == "cluster"', ("ray", "cluster")),
        ("transformers>=5; extra == 'lora'", ("transformers", "lora")),
        ("torch==2.13.0", ("torch", None)),
        ("faiss-cpu", ("faiss-cpu", None)),
    ],
)
def test_requirement_names(requirement, expected):
    assert provenance._requirement_name(requirement) == expected


def test_environment_facts():
    env = provenance.environment("cpu", 3)
    assert env["threads"] == 3 and env["device"] == "cpu" and env["gpu"] == "" and env["cpu"] and env["host"]
    assert "torch" in env["packages"] and "pytest" not in env["packages"]
    assert provenance.environment_id(env) == provenance.environment_id(dict(reversed(list(env.items()))))


def test_describe_and_dirty_flag(tmp_path):
    env = {"host": "a", "packages": {"torch": "2.13.0"}, "device": "cpu", "cpu": "Xeon", "gpu": "", "threads": 2}
    doc = provenance.document({"git_sha": "abc", "git_dirty": True}, {"e1": env}, {"c1": "e1", "c2": "e1"})
    assert "cells" not in doc  # one environment ran every cell
    (tmp_path / "provenance.json").write_text(json.dumps(doc))
    line = provenance.describe(tmp_path)
    assert "abc" in line and "UNCOMMITTED" in line and "Xeon" in line and "torch 2.13.0" in line
    assert provenance.is_dirty(tmp_path)
    assert not provenance.is_dirty(tmp_path / "nowhere") and provenance.describe(tmp_path / "nowhere")
