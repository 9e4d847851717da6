"""The artifacts as `sam build` builds them: the functions, their layers and the shipped code, read from the build."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.repo import ROOT
from tests.templates import _CloudFormationLoader

BUILD = ROOT / ".aws-sam" / "build"


@dataclass(frozen=True)
class BuiltFunction:
    """One Lambda function of the built templates, with what the runtime would put on its path."""

    logical_id: str  # as sam names it: CarRental/ValidateUploadFunction
    code_dir: Path
    layer_dirs: tuple[Path, ...]
    handler: str
    runtime: str
    memory_mb: int
    timeout_seconds: int
    environment: dict[str, Any]

    def size_bytes(self) -> int:
        """The function and its layers unzipped, as Lambda counts them against its limit."""
        return sum(path.stat().st_size for root in (self.code_dir, *self.layer_dirs) for path in _files(root))


def _files(root: Path) -> Iterator[Path]:
    return (path for path in root.rglob("*") if path.is_file() and not path.is_symlink())


def _load(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CloudFormationLoader)


def _layer_dir(root: dict[str, Any], root_dir: Path, reference: Any) -> Path:
    """The built folder of a layer a root-stack parameter or resource names (`!Ref CoreLayer`)."""
    name = reference["Ref"]
    resource = root["Resources"][name]
    assert resource["Type"] == "AWS::Serverless::LayerVersion", f"{name} is not a layer of the root stack"
    return root_dir / resource["Properties"]["ContentUri"]


def _functions_of(template: dict[str, Any], folder: Path, prefix: str, resolve_layer: Any) -> list[BuiltFunction]:
    found = []
    defaults = template.get("Globals", {}).get("Function", {})
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = {**defaults, **resource["Properties"]}
        found.append(
            BuiltFunction(
                logical_id=f"{prefix}{name}",
                code_dir=folder / properties["CodeUri"],
                layer_dirs=tuple(resolve_layer(layer) for layer in properties.get("Layers", [])),
                handler=properties["Handler"],
                runtime=properties["Runtime"],
                memory_mb=int(properties.get("MemorySize", 128)),
                timeout_seconds=int(properties.get("Timeout", 3)),
                environment=properties.get("Environment", {}).get("Variables", {}),
            )
        )
    return found


def built_functions(build: Path) -> dict[str, BuiltFunction]:
    """Every function of the built root template and of the stacks it nests, by sam's logical id."""
    root = _load(build / "template.yaml")
    functions = _functions_of(root, build, "", lambda layer: _layer_dir(root, build, layer))
    for name, resource in root["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Application":
            continue
        nested_path = build / resource["Properties"]["Location"]
        passed = resource["Properties"].get("Parameters", {})

        def nested_layer(layer: Any, passed: dict[str, Any] = passed) -> Path:
            # A nested stack names the layer by a parameter that the root stack fills with `!Ref <layer>`.
            return _layer_dir(root, build, passed[layer["Ref"]])

        nested = _load(nested_path)
        functions += _functions_of(nested, nested_path.parent, f"{name}/", nested_layer)
    return {function.logical_id: function for function in functions}


def interpreter(version: str) -> Path:
    """A Python of `version` (3.12 for Lambda, 3.9 for EMR 7, 3.11 for Glue 5): pyenv's, or the PATH's."""
    pyenv = subprocess.run(["pyenv", "root"], capture_output=True, text=True) if shutil.which("pyenv") else None
    if pyenv is not None and pyenv.returncode == 0:
        found = sorted(Path(pyenv.stdout.strip(), "versions").glob(f"{version}.*/bin/python{version}"))
        if found:
            return found[-1]
    on_path = shutil.which(f"python{version}")
    assert on_path, f"the tests of the built artifacts need python{version} (pyenv install {version} or the PATH)"
    return Path(on_path)


@pytest.fixture(scope="session")
def build() -> Path:
    """`make build` (sam build) once, whichever test worker asks first; the others wait for it."""
    with (ROOT / ".aws-sam.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = subprocess.run(["make", "-s", "build"], cwd=ROOT, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"sam build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return BUILD


@pytest.fixture(scope="session")
def functions(build: Path) -> dict[str, BuiltFunction]:
    return built_functions(build)
