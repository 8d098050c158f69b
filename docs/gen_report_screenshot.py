"""Make docs/report-digits-study.png: the report of the example project's sweep, as a headless Chromium shows it.

    uv run python docs/gen_report_screenshot.py

Runs ``digits_study.experiments.sweep`` (the default 4x4 grid) into a fresh temporary workspace with the
in-process executor, writes its report, opens it in Debian's ``chromium`` through selenium and the system
``chromedriver``, clicks the ``plot`` task so its details (with the picture's preview) are open, and saves the
screenshot. The example's README and the report guide show it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "report-digits-study.png"

_MAKE = """
import sys
from digits_study.experiments.sweep import DigitsSweep
from misen.report import write_report
from misen.runner import resolve_workspace

sweep = DigitsSweep()
report = sweep.run(executor="in-process")
assert report.ok, report.failed
print(write_report(sweep.named_tasks(), resolve_workspace(None), sys.argv[1], title=repr(sweep)))
"""


def main() -> int:
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not browser or not driver:
        print("needs Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver", file=sys.stderr)
        return 1
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    with tempfile.TemporaryDirectory(prefix="misen-report-shot-") as tmp:
        project = Path(tmp)
        (project / "pyproject.toml").write_text('[project]\nname = "shot"\nversion = "0"\n')
        (project / ".misen.toml").write_text('[workspace]\ntype = "disk"\ndirectory = ".misen"\n')
        html = project / "report.html"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MISEN_")}
        subprocess.run([sys.executable, "-c", textwrap.dedent(_MAKE), str(html)], cwd=project, env=env, check=True)
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1600,1000",
                     "--hide-scrollbars", f"--user-data-dir={project / 'chromium'}"):
            options.add_argument(flag)
        session = webdriver.Chrome(service=Service(driver), options=options)
        try:
            session.get(html.as_uri())
            session.find_element(By.CSS_SELECTOR, ".node.group").click()  # the 16 evaluations, expanded
            plot = session.execute_script("return misenReport.data.tasks.find(t => t.names.includes('plot')).id")
            session.execute_script("misenReport.showDetails(arguments[0])", plot)
            session.execute_script(  # the panel scrolled to the result's picture, the page left where it is
                "const d = document.getElementById('details');"
                "d.scrollTop = [...d.querySelectorAll('h3')].find(h => h.textContent === 'Result').offsetTop - 12;"
            )
            session.save_screenshot(str(TARGET))
        finally:
            session.quit()
    print(TARGET)
    return 0


if __name__ == "__main__":
    sys.exit(main())
