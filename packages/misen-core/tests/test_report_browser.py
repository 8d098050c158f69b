"""``report`` opened in a real headless Chromium: what a person sees, checked from the rendered page.

The demo project is run once (one task fails, its dependent is skipped), then a helper is edited (one task is
stale). The report must show every task as a node of its state's colour, the failure's error and log, the
stale task's code diff, one timeline bar per executed task, the preview picture, and the sortable sweep
table. A screenshot of each view is saved under the test's folder and its path printed.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import pytest
from misen.report import STATE_COLOURS
from report_chromium import chromium
from report_demo_project import EXECUTED_IN_FIRST_RUN, STATES, edit_helper, make_demo
from test_cli_project import Project, pycache_dir

STEPS = "demo_project.steps"


@pytest.fixture
def demo(tmp_path: Path) -> Project:
    project = make_demo(tmp_path / "proj", pycache_dir())
    first = project.run("-m", STEPS)
    assert first.returncode == 1, first.stderr  # one task fails: the run says so
    edit_helper(project)
    return project


def _hex(colour: str) -> str:
    """A computed CSS colour (``rgb(76, 175, 80)``) as ``#4caf50``."""
    if colour.startswith("#"):
        return colour.lower()
    parts = colour[colour.index("(") + 1 : colour.index(")")].split(",")
    return "#" + "".join(f"{int(float(p)):02x}" for p in parts[:3])


def _screenshot(driver: Any, path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Save a screenshot for a person to look at, and print where (also copied to $MISEN_TEST_ARTIFACTS)."""
    driver.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get("MISEN_TEST_ARTIFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        path = Path(shutil.copy(path, Path(keep) / path.name))
    with capsys.disabled():
        print(f"\nreport screenshot: {path}")


def _open(driver: Any, html: Path) -> None:
    driver.get(html.as_uri())
    assert driver.execute_script("return document.body.getAttribute('data-ready')") == "1"
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert not errors, errors


def test_report_in_chromium_shows_states_errors_diffs_timeline_and_previews(
    demo: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from selenium.webdriver.common.by import By

    out = tmp_path / "report.html"
    proc = demo.run("-m", STEPS, "report", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out.resolve())
    page = out.read_text()
    # Self-contained: nothing is fetched from anywhere.
    assert "<link" not in page and "src=\"http" not in page and "@import" not in page
    graph = json.loads(demo.run("-m", STEPS, "tree", "--format", "json").stdout)
    expected = {t["id"]: STATES[t["label"]] for t in graph["tasks"]}
    assert sorted(expected.values()) == sorted(STATES.values())

    with chromium() as driver:
        _open(driver, out)
        # Every task is a node filled with its state's colour.
        nodes = driver.find_elements(By.CSS_SELECTOR, ".node[data-id]")
        seen = {}
        for node in nodes:
            rect = node.find_element(By.CSS_SELECTOR, "rect.box")
            seen[node.get_attribute("data-id")] = _hex(driver.execute_script("return getComputedStyle(arguments[0]).fill", rect))
        assert seen == {tid: STATE_COLOURS[state] for tid, state in expected.items()}
        _screenshot(driver, tmp_path / "report-graph.png", capsys)

        # The failed task: its error and the end of its log (the traceback).
        failed = next(t for t, s in expected.items() if s == "failed")
        driver.find_element(By.CSS_SELECTOR, f'.node[data-id="{failed}"]').click()
        details = driver.find_element(By.ID, "details")
        assert details.is_displayed()
        assert "ValueError: x=3, y=2 is out of range" in details.find_element(By.CSS_SELECTOR, "pre.error").text
        log = details.find_element(By.CSS_SELECTOR, "pre.log").text
        assert "scoring x=3 y=2" in log and "Traceback" in log
        assert "<!-- a log line that looks like markup </script> -->" in log  # text, never markup
        _screenshot(driver, tmp_path / "report-failed.png", capsys)

        # The skipped task names the failure that keeps it from running.
        skipped = next(t for t, s in expected.items() if s == "skipped")
        driver.execute_script("misenReport.showDetails(arguments[0])", skipped)
        assert "out of range" in details.find_element(By.CSS_SELECTOR, "pre.error").text

        # The stale task: the code diff of the helper that changed, old against new.
        stale = next(t for t, s in expected.items() if s == "stale")
        driver.find_element(By.ID, "details-close").click()
        driver.find_element(By.CSS_SELECTOR, f'.node[data-id="{stale}"]').click()
        diff = details.find_element(By.CSS_SELECTOR, ".stale-diff").text
        assert "demo_project.steps._shift" in diff
        assert "-    return v + 1" in diff and "+    return v + 2" in diff
        _screenshot(driver, tmp_path / "report-stale.png", capsys)

        # The picture's preview is an image the browser decoded.
        picture = next(t["id"] for t in graph["tasks"] if t["label"] == "picture")
        driver.execute_script("misenReport.showDetails(arguments[0])", picture)
        image = details.find_element(By.CSS_SELECTOR, "img.preview")
        assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) == 48

        # The timeline of the last run: one bar per executed task (the failed attempt included).
        driver.find_element(By.ID, "details-close").click()
        driver.find_element(By.CSS_SELECTOR, 'nav#tabs button[data-tab="timeline"]').click()
        bars = driver.find_elements(By.CSS_SELECTOR, "#timeline rect.bar")
        assert len(bars) == EXECUTED_IN_FIRST_RUN
        assert sorted(b.get_attribute("data-state") for b in bars).count("failed") == 1
        _screenshot(driver, tmp_path / "report-timeline.png", capsys)

        # The task table has a row per task; the sweep table sorts by a column.
        driver.find_element(By.CSS_SELECTOR, 'nav#tabs button[data-tab="tasks"]').click()
        assert len(driver.find_elements(By.CSS_SELECTOR, "#task-table tbody tr")) == len(STATES)
        driver.find_element(By.CSS_SELECTOR, 'nav#tabs button[data-tab="results"]').click()
        table = driver.find_element(By.CSS_SELECTOR, 'table[data-fn="score"]')
        assert len(table.find_elements(By.CSS_SELECTOR, "tbody tr")) == 5  # the failed score has no result
        header = table.find_element(By.XPATH, ".//th[text()='value']")
        header.click()
        header = driver.find_element(By.XPATH, "//table[@data-fn='score']//th[text()='value']")
        header.click()  # descending
        first = driver.find_element(By.CSS_SELECTOR, 'table[data-fn="score"] tbody tr td:nth-child(3)').text
        assert first == "31"
        _screenshot(driver, tmp_path / "report-results.png", capsys)


def test_large_sweeps_group_siblings_into_one_expandable_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from selenium.webdriver.common.by import By

    project = make_demo(tmp_path / "proj", pycache_dir())
    ran = project.run("-m", "misen.cli", "experiment", f"{STEPS}:BigDemo", "run")
    assert ran.returncode == 0, ran.stderr
    out = tmp_path / "big.html"
    proc = project.run("-m", "misen.cli", "experiment", f"{STEPS}:BigDemo", "report", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    with chromium() as driver:
        _open(driver, out)
        group = driver.find_element(By.CSS_SELECTOR, '.node.group[data-group="score"]')
        assert "score × 15" in group.text
        assert len(driver.find_elements(By.CSS_SELECTOR, ".node[data-id]")) == 1  # only the named task
        group.click()
        assert len(driver.find_elements(By.CSS_SELECTOR, ".node[data-id]")) == 16
        _screenshot(driver, tmp_path / "report-expanded.png", capsys)
