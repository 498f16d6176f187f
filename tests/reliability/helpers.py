"""Small helpers shared by the reliability tests: raw multipart bodies, what is on disk, waiting
with a deadline, and the outcome recorder behind docs/reliability.md."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

BOUNDARY = "xrfwebBoundary7"


def multipart(files: dict[str, tuple[str, bytes, str]], fields: dict | None = None) -> bytes:
    """A multipart/form-data body as any client may send it: file names and content types
    exactly as given (unsanitised). files: {field: (filename, content, content_type)}."""
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in (fields or {}).items()]
    for field, (filename, content, content_type) in files.items():
        head = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; '
                f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n')
        parts.append(head.encode("utf-8", "surrogateescape") + content + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def files_under(*folders: Path) -> set[str]:
    """Every file and folder below the given folders (relative paths with the folder's name)."""
    found = set()
    for folder in folders:
        folder = Path(folder)
        if not folder.exists():
            continue
        for root, dirs, names in os.walk(folder):
            for name in dirs + names:
                found.add(str(Path(root, name).relative_to(folder.parent)))
    return found


def wait_until(predicate, timeout: float, what: str, every: float = 0.25):
    """predicate()'s first truthy value, or AssertionError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def record(section: str, item: str, outcome: str, **details) -> None:
    """Append one observed outcome to $XRFWEB_RELIABILITY_RECORD (a JSON-lines file) when
    scripts/reliability_report.py runs the tests; a no-op otherwise."""
    path = os.environ.get("XRFWEB_RELIABILITY_RECORD")
    if not path:
        return
    line = {"section": section, "item": item, "outcome": outcome, **details}
    with open(path, "a") as f:
        f.write(json.dumps(line, default=str) + "\n")
