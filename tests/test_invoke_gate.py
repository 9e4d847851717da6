"""`make invoke-gate`: run with stand-ins for the AWS CLI and SAM CLI, which record what they were asked."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.repo import ROOT

# Answers for `aws`: the stack's outputs as the --query asks for them, and put-object's answer.
FAKE_AWS = """#!{python}
import json, sys
args = sys.argv[1:]
with open({log!r}, "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[:2] == ["cloudformation", "describe-stacks"]:
    print(json.dumps([["DataBucketName", "data-dev"], ["CarRentalStateMachineArn", "arn:sm:dev"],
                      ["AlertTopicArn", "arn:topic:dev"], ["ArtifactsBucketName", "artifacts-dev"]]))
elif args[:2] == ["s3api", "put-object"]:
    body = args[args.index("--body") + 1]
    assert open(body).readline().startswith("user_id,"), body
    print(json.dumps({{"ETag": '"abc123"', "VersionId": "v-42"}}))
else:
    sys.exit("unexpected aws call: " + " ".join(args))
"""

# `sam`: keeps a copy of the event and the environment it is given to `local invoke`.
FAKE_SAM = """#!{python}
import json, shutil, sys
args = sys.argv[1:]
with open({log!r}, "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[:2] == ["local", "invoke"]:
    shutil.copy(args[args.index("-e") + 1], {kept!r} + "/event.json")
    shutil.copy(args[args.index("--env-vars") + 1], {kept!r} + "/env.json")
"""


def _script(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_invoke_gate_uploads_the_sample_fills_the_event_and_invokes_the_gate(tmp_path: Path):
    bin_dir, kept = tmp_path / "bin", tmp_path / "kept"
    bin_dir.mkdir()
    kept.mkdir()
    aws_log, sam_log = tmp_path / "aws.log", tmp_path / "sam.log"
    _script(bin_dir / "aws", FAKE_AWS.format(python=sys.executable, log=str(aws_log)))
    sam = _script(bin_dir / "sam", FAKE_SAM.format(python=sys.executable, log=str(sam_log), kept=str(kept)))
    venv = Path(sys.executable).parent.parent  # the environment running the tests has `rental-analytics`
    tools = tmp_path / "tools"
    stamps = [str(venv / ".installed"), str(tools / "sam" / ".installed")]
    command = ["make", "--no-print-directory", *(f"--old-file={s}" for s in stamps), "invoke-gate"]
    settings = [f"VENV={venv}", f"TOOLS={tools}", f"SAM={sam}", "STACK=dev", "DATASET=users"]
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    done = subprocess.run([*command, *settings], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stdout + done.stderr
    put = [json.loads(line) for line in aws_log.read_text().splitlines()][-1]
    assert put[:2] == ["s3api", "put-object"]
    assert put[put.index("--bucket") + 1] == "data-dev"
    assert put[put.index("--key") + 1] == "raw/2024-06-01/users.csv"
    # The gate lives in the nested car-rental stack: SAM CLI names it by its stack path.
    assert [json.loads(line)[:3] for line in sam_log.read_text().splitlines()] == [
        ["build", "CarRental/ValidateUploadFunction"],
        ["local", "invoke", "CarRental/ValidateUploadFunction"],
    ]
    event = json.loads((kept / "event.json").read_text())["Records"][0]["s3"]
    assert event["bucket"]["name"] == "data-dev"
    assert event["object"]["key"] == "raw/2024-06-01/users.csv"
    assert (event["object"]["versionId"], event["object"]["eTag"]) == ("v-42", "abc123")
    gate_env = json.loads((kept / "env.json").read_text())["ValidateUploadFunction"]
    sizing = {
        k: v
        for k, v in json.loads((ROOT / "events" / "env.json").read_text())["ValidateUploadFunction"].items()
        if k.startswith("CORE_")
    }
    assert gate_env == {
        "DATA_BUCKET": "data-dev",
        "STATE_MACHINE_ARN": "arn:sm:dev",
        "ALERT_TOPIC_ARN": "arn:topic:dev",
        **sizing,  # the sizing rule's settings, as events/env.json gives them
    }
    assert "s3://data-dev/raw/2024-06-01/users.csv version v-42" in done.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_invoke_gate_names_what_it_needs(tmp_path: Path):
    venv, tools = Path(sys.executable).parent.parent, tmp_path / "tools"
    stamps = [f"--old-file={venv / '.installed'}", f"--old-file={tools / 'sam' / '.installed'}"]
    settings = [f"VENV={venv}", f"TOOLS={tools}"]
    base = ["make", "--no-print-directory", *stamps, "invoke-gate", *settings]

    no_stack = subprocess.run(base, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert no_stack.returncode != 0 and "usage: make invoke-gate STACK=" in no_stack.stdout
    no_event = subprocess.run(
        [*base, "STACK=dev", "DATASET=cars"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert no_event.returncode != 0 and "no events/s3_put_cars.json" in no_event.stdout
