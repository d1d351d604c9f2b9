from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run(*args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ingestor", *args], env={"PATH": "/usr/bin:/bin", **environ}, capture_output=True, text=True, timeout=60
    )


def test_serve_without_a_secret_says_what_is_missing() -> None:
    done = run("serve")

    assert done.returncode == 2
    assert (
        done.stderr == "ingestor: configuration error: SHARPAPI_WEBHOOK_SECRET is required: the signing secret from SharpAPI's dashboard\n"
    )


def test_serve_names_a_bad_value() -> None:
    done = run("serve", SHARPAPI_WEBHOOK_SECRET="s", MAX_BODY_BYTES="big")

    assert done.returncode == 2
    assert done.stderr == "ingestor: configuration error: MAX_BODY_BYTES must be an integer, not 'big'\n"


def test_send_names_a_file_it_cannot_read(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"

    done = run("send", "--file", str(missing), SHARPAPI_WEBHOOK_SECRET="s")

    assert done.returncode == 2
    assert done.stderr == f"ingestor send: cannot read {missing}: No such file or directory\n"


def test_send_needs_something_to_send() -> None:
    done = run("send", SHARPAPI_WEBHOOK_SECRET="s")

    assert done.returncode == 2
    assert "one of the arguments --file --samples --generate is required" in done.stderr
