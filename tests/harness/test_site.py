"""The static site on small results in a git repository made for the test: pages, escaping, links,
history; then in a real headless Chromium: the index renders, the filters filter, no console errors."""

from __future__ import annotations

import html
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from suites.harness import site
from tests.harness.headless_chromium import Browser, find_chromium
from tests.harness.report_fixtures import HOSTILE, claim_entry, git, repo_with_history, sample_rows, write_results

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed: `apt-get install -y chromium` (Debian/Ubuntu) runs these"
)
OTHER = [claim_entry("other.a.x", "reproduced"), claim_entry("other.a.y", "not reproduced")]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    repo = repo_with_history(tmp_path_factory.mktemp("repo"))
    write_results(repo / "results", suite="other", profile="smoke", claims=OTHER)  # never committed
    out = repo / "site"
    index = site.build_site(repo / "results", out, repo)
    return repo, out, index


def pages(out: Path) -> list[Path]:
    return sorted(out.rglob("*.html"))


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.targets += [value for name, value in attrs if name in ("href", "src") and value]


def test_an_index_row_and_a_page_per_claim_and_per_suite(built):
    repo, out, index = built
    text = index.read_text()
    assert text.count("<tr data-suite=") == 6 + len(OTHER)
    assert len(list((out / "claims").glob("*.html"))) == 6 + len(OTHER)
    assert sorted(p.name for p in (out / "suites").glob("*.html")) == ["other--smoke.html", "toy--quick.html"]


def test_all_text_is_escaped(built):
    _, out, _ = built
    every = "".join(p.read_text() for p in pages(out))
    assert "<script>alert" not in every
    assert html.escape(HOSTILE, quote=True) in (out / "claims" / "toy--quick--toy.speed.ratio.html").read_text()
    assert "Table &lt;2&gt;" in every and "missing&lt;X&gt;" in every


def test_every_link_and_image_points_at_a_file_in_the_site(built):
    _, out, _ = built
    checked = 0
    for page in pages(out):
        parser = Links()
        parser.feed(page.read_text())
        for target in parser.targets:
            url = urlparse(target)
            assert not url.scheme and not url.netloc, f"{page.name} reaches outside the site: {target}"
            resolved = (page.parent / unquote(url.path)).resolve()
            assert resolved.is_file(), f"{page.relative_to(out)} links to a missing {target}"
            assert out.resolve() in resolved.parents
            checked += 1
    assert checked > 50


def test_history_lists_the_commits_that_changed_the_claim(built):
    repo, out, _ = built
    past = site.history(repo, repo / "results" / "toy" / "quick" / "claims.json")
    changed = past["toy.acc.noninf"]
    assert [h["subject"] for h in changed] == ["rerun <quick>", "first results"]  # newest first, unrelated left out
    assert [h["verdict"] for h in changed] == ["reproduced", "inconclusive"]
    assert [h["subject"] for h in past["toy.speed.ratio"]] == ["first results"]  # unchanged by the rerun
    page = (out / "claims" / "toy--quick--toy.acc.noninf.html").read_text()
    assert "rerun &lt;quick&gt;" in page and "unrelated change" not in page
    assert "No history in git" in (out / "claims" / "other--smoke--other.a.x.html").read_text()


def test_an_uncommitted_change_heads_the_history():
    results = site.SuiteResults("toy", "quick", Path("."), [], [])
    committed = {"sha": "abc", "date": "2026-01-01", "subject": "s", "verdict": "inconclusive", "measured": 1.0,
                 "ci_low": 0.5, "ci_high": 1.5}  # fmt: skip
    same = claim_entry("toy.a.b", "inconclusive")
    assert "working tree" not in site.claim_page(results, same, [committed])
    changed = claim_entry("toy.a.b", "reproduced", measured=2.0, ci_low=1.5, ci_high=2.5)
    assert "working tree" in site.claim_page(results, changed, [committed])


def test_the_runs_behind_a_claim_follow_its_sides_when_claims_json_names_them():
    rows = sample_rows()
    claim = claim_entry("toy.acc.beats", "reproduced")
    sides = {"experiment": "main", "treatment": {"method": "ours"}, "baseline": {"method": ["base"]}}
    summary = site.runs_summary(rows, claim, sides)
    by_role = {(r[0], r[2]): r for r in summary}
    assert by_role[("treatment", "digits")][5] == 3 and by_role[("treatment", "digits")][7] == "92"
    assert by_role[("baseline", "digits")][7] == "90"
    assert by_role[("treatment", "missing<X>")][6] == "not_run 1"
    assert len(site.runs_summary(rows, claim, None)) == 3  # by metric only: every group of acc rows
    assert site.claim_filters("toy", {**claim, **sides}) == sides


def test_forest_plot_is_drawn_and_shown_first(built):
    _, out, _ = built
    assert (out / "figures" / "toy" / "quick" / "forest.png").is_file()
    page = (out / "suites" / "toy--quick.html").read_text()
    assert page.index("forest.png") < page.index("accuracy.png")


def test_results_outside_the_repository_and_a_rebuild(tmp_path):
    write_results(tmp_path / "results")
    out = tmp_path / "site"
    (out / "claims").mkdir(parents=True)
    (out / "claims" / "gone.html").write_text("stale")
    elsewhere = tmp_path / "not-a-repo"
    elsewhere.mkdir()
    site.build_site(tmp_path / "results", out, elsewhere)
    assert not (out / "claims" / "gone.html").exists()
    assert "No history in git" in (out / "claims" / "toy--quick--toy.speed.ratio.html").read_text()


def test_history_of_a_repository_without_commits_is_empty(tmp_path):
    git(tmp_path, "init", "-q")
    assert site.history(tmp_path, tmp_path / "results" / "x" / "y" / "claims.json") == {}


# --------------------------------------------------------------------------------------------
# in a real browser


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed: `apt-get install -y chromium` (Debian/Ubuntu) runs these")
    opened = Browser(CHROMIUM)
    yield opened
    opened.close()


VISIBLE = "document.querySelectorAll('#claims tbody tr:not([hidden])').length"


def choose(browser: Browser, name: str, value: str) -> int:
    """Pick `value` in the filter `name` as a user would (the change event fires), return rows shown."""
    browser.evaluate(f"var s = document.querySelector('select[data-filter={name}]'); s.value = {value!r};"
                     "s.dispatchEvent(new Event('change', {bubbles: true}));")  # fmt: skip
    return browser.evaluate(VISIBLE)


@needs_chromium
def test_the_index_renders_and_the_filters_filter(built, browser):
    _, _, index = built
    browser.errors.clear()  # the browser is shared: each test answers for its own pages
    browser.open(index)
    assert browser.evaluate("document.title") == "claimbench: every claim"
    total = 6 + len(OTHER)
    assert browser.evaluate(VISIBLE) == total
    assert browser.evaluate("document.getElementById('shown').textContent") == f"{total} of {total} claims shown"
    assert choose(browser, "verdict", "reproduced") == 3  # toy.speed.ratio, toy.acc.noninf (rerun), other.a.x
    assert choose(browser, "suite", "other") == 1  # filters combine
    assert choose(browser, "suite", "") == 3
    assert choose(browser, "verdict", "") == total
    assert choose(browser, "evidence", "short") == 1  # toy.acc.floor: 1 of 3 runs converged
    assert (
        browser.evaluate("document.querySelector('#claims tbody tr:not([hidden]) a[href*=\"claims/\"]').textContent")
        == "toy.acc.floor"
    )
    assert choose(browser, "evidence", "") == total
    assert browser.errors == []


@needs_chromium
def test_every_page_loads_without_console_errors_and_its_images_load(built, browser):
    _, out, _ = built
    browser.errors.clear()
    for page in pages(out):
        browser.open(page)
        broken = browser.evaluate("Array.from(document.images).filter(i => !i.complete || !i.naturalWidth).length")
        assert broken == 0, f"{page.name}: {broken} image(s) did not load"
        assert browser.evaluate("document.querySelector('h1').textContent"), page.name
    assert browser.errors == []


@needs_chromium
def test_the_browser_check_sees_errors(tmp_path, browser):
    """The console checks above could pass by seeing nothing: a page with a broken script and a
    missing image must be caught."""
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img src="missing.png"><script>undefinedFunction();</script></body></html>')
    browser.errors.clear()
    browser.open(bad)
    assert any("undefinedFunction" in err for err in browser.errors)
    browser.errors.clear()
    assert browser.evaluate("Array.from(document.images).filter(i => !i.naturalWidth).length") == 1
    browser.errors.clear()
