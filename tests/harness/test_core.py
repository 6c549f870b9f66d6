from __future__ import annotations

import pytest

from suites.harness.core import Claim, Experiment, Suite, canonical_params, derive_seed


def test_seeds_are_deterministic_and_distinct():
    seeds = [derive_seed(7, i) for i in range(100)]
    assert seeds == [derive_seed(7, i) for i in range(100)]
    assert len(set(seeds)) == 100
    assert derive_seed(8, 0) != derive_seed(7, 0)


def test_experiment_expands_the_grid_in_a_fixed_order():
    e = Experiment("e", run=lambda c, x: {}, tasks={"t1": {"k": 1}, "t2": {}}, methods={"m": {"lr": 0.1}},
                   grid={"r": [1, 2, 4], "alpha": [8]}, seeds=2)  # fmt: skip
    cells = e.cells("s", base_seed=0)
    assert len(cells) == 2 * 1 * 3 * 2
    assert cells[0].params == canonical_params({"alpha": 8, "r": 1}) == '{"alpha":8,"r":1}'
    assert cells[0].task_kwargs == {"k": 1} and cells[0].method_kwargs == {"lr": 0.1}
    assert {c.seed for c in cells} == {derive_seed(0, 0), derive_seed(0, 1)}
    assert len({c.key for c in cells}) == len(cells)


def test_suite_rejects_duplicate_claims_and_unknown_overrides():
    c = Claim(id="a.b", statement="", source="", experiment="e", metric="m", treatment={})
    with pytest.raises(ValueError, match="duplicate"):
        Suite("s", "S", claims=[c, c], profiles={}, build=lambda s: [])
    suite = Suite("s", "S", claims=[c], profiles={"smoke": {"seeds": 1}}, build=lambda s: [])
    assert suite.settings("smoke", {"seeds": 3}) == {"seeds": 3}
    with pytest.raises(ValueError, match="no setting 'datasets'"):
        suite.settings("smoke", {"datasets": ["X"]})


def test_a_family_is_one_line_of_data_per_member():
    from suites.harness.core import family

    base = Claim(id="p.lat.small", statement="", source="", experiment="e", metric="m", treatment={"batch": 1},
                 direction="equivalent", margin=0.02)  # fmt: skip
    members = family(base, [dict(id="p.lat.small"), dict(id="p.lat.large", treatment={"batch": 32})])
    assert [c.id for c in members] == ["p.lat.small", "p.lat.large"]
    assert all(c.family_name == "p.lat" and c.margin == 0.02 for c in members)
    with pytest.raises(ValueError, match="own id"):
        family(base, [dict(margin=0.05)])


def test_typed_profiles_reject_misspelt_overrides():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Profile:
        seeds: int
        epochs: int

    c = Claim(id="a.b", statement="", source="", experiment="e", metric="m", treatment={})
    suite = Suite("s", "S", claims=[c], profiles={"smoke": Profile(seeds=1, epochs=2)}, build=lambda s: [])
    assert suite.settings("smoke", {"seeds": 3}) == Profile(seeds=3, epochs=2)
    with pytest.raises(ValueError, match="no setting 'epoch'"):
        suite.settings("smoke", {"epoch": 5})
