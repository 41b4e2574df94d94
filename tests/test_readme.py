"""The README's Python snippet runs and prints what the README says it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_python_snippet_prints_what_the_readme_shows():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "metric.compute" in b)
    shown = re.search(r"^# (KL .*?)\s\s", block, flags=re.M).group(1)
    proc = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == shown
    assert "0-based option index" in block and "human distribution" in block


def test_main_job_writes_its_report_beside_the_run_folder():
    """`culturesim report` refuses an --out inside a run it reads; the README's first command must not ask for one."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)[0]
    run = re.search(r"culturesim simulate .*?--out (\S+)", first).group(1)
    report_out = re.search(r"culturesim report \S+ --out (\S+)", first).group(1)
    assert not Path(report_out).is_relative_to(Path(run)), (run, report_out)
    assert f"`{report_out}/report.html`" in readme
