"""Run the reliability tests and write what they observed into docs/reliability.md.

    .venv/bin/python scripts/reliability_report.py [extra pytest arguments]

Runs tests/test_reliability_*.py and tests/test_security_*.py (Django's test client against a temporary test database, a real
Celery worker on the real Redis, a private redis-server for the restart test), each test
recording the outcome it saw; the tables between the GENERATED markers of docs/reliability.md
are replaced with them. Uses DATABASE_URL when set (PostgreSQL), else SQLite. Exits with pytest's
status: a failing test is written into the table as FAILED, never hidden.
"""
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "reliability.md"
TESTS = ["tests/test_reliability_uploads.py", "tests/test_reliability_faults.py",
         "tests/test_reliability_side_tasks.py", "tests/test_reliability_access.py",
         "tests/test_reliability_security.py",
         "tests/test_reliability_browser.py", "tests/test_security_web.py",
         "tests/test_security_files.py", "tests/test_security_browser.py"]
START, END = "<!-- GENERATED: start -->", "<!-- GENERATED: end -->"


def escape(text: str) -> str:
    """Markup the tests sent (hostile names) is shown as text, not rendered by the Markdown
    viewer."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cell(text: str, limit: int = 220) -> str:
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return escape(text).replace("|", "\\|")


def run_tests(record: Path, extra: list[str]) -> tuple[int, str, float]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["XRFWEB_RELIABILITY_RECORD"] = str(record)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "pytest", *TESTS, "-q", "-p",
                             "no:cacheprovider", *extra], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    summary = [line for line in result.stdout.splitlines() if re.search(r"\d+ (passed|failed)",
                                                                         line)]
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    sys.stdout.write(result.stdout[-3000:])
    text = (summary[-1].strip("= ") if summary else "pytest printed no summary") + \
        "".join(f"\n- {line}" for line in failed)
    return result.returncode, text, time.monotonic() - started


def tables(lines: list[dict]) -> str:
    uploads, models = OrderedDict(), OrderedDict()
    others = OrderedDict()
    for line in lines:
        if line["section"] in ("upload", "model upload"):
            rows = uploads if line["section"] == "upload" else models
            row = rows.setdefault(line["item"], {"what": line.get("what", ""),
                                                 "expect": line.get("expect", "")})
            row[line.get("via", "")] = line["outcome"]
        else:
            others.setdefault(line["section"], []).append(line)

    out = []

    def upload_table(title, rows):
        out.append(f"### {title} ({len(rows)} files, each sent through the API and the page's "
                   "form)\n")
        out.append("| file | what it is | expected | API | form |")
        out.append("|---|---|---|---|---|")
        for name, row in rows.items():
            api, form = row.get("api", "not run"), row.get("form", "not run")
            out.append(f"| `{cell(name, 60)}` | {cell(row['what'], 90)} | {row['expect']} | "
                       f"{cell(api)} | {'same' if form == api else cell(form)} |")
        out.append("")

    upload_table("Map uploads", uploads)
    upload_table("Model uploads (staff)", models)
    titles = {"fault": "Faults injected", "access": "Access and security",
              "files": "Files written (exports, results)",
              "deployment": "Deployment", "browser": "In a real browser (Chromium)"}
    for section, rows in others.items():
        out.append(f"### {titles.get(section, section)}\n")
        out.append("| what was done | what happened |")
        out.append("|---|---|")
        for row in rows:
            out.append(f"| {cell(row['item'], 120)} | {cell(row['outcome'], 400)} |")
        out.append("")
    return "\n".join(out)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="xrfweb-reliability-") as tmp:
        record = Path(tmp) / "record.jsonl"
        record.touch()
        status, summary, seconds = run_tests(record, sys.argv[1:])
        lines = [json.loads(line) for line in record.read_text().splitlines() if line.strip()]
    database = "PostgreSQL" if os.environ.get("DATABASE_URL", "").startswith("postgres") \
        else "SQLite"
    generated = "\n".join([
        START,
        f"_Generated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by "
        f"`.venv/bin/python scripts/reliability_report.py` on {database}: {cell(summary, 2000)} "
        f"({seconds:.0f} s in all)._\n",
        tables(lines),
        END,
    ])
    doc = DOC.read_text() if DOC.exists() else f"# Reliability\n\n{START}\n{END}\n"
    if START not in doc or END not in doc:
        doc = doc.rstrip() + f"\n\n{START}\n{END}\n"
    before, rest = doc.split(START, 1)
    after = rest.split(END, 1)[1]
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(before + generated + after)
    print(f"wrote {DOC.relative_to(REPO)}: {len(lines)} observations; pytest: {summary}")
    return status


if __name__ == "__main__":
    sys.exit(main())
