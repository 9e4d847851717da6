"""Publishing a run's folders in one step: stage them all, write a journal, then move each into place.

The journal is the point of no return. A run stopped before it leaves the published folders as they were,
and its staging is dropped; a run stopped after it is finished by the next `recover`, which moves the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from rental_analytics.platform import hadoop_fs
from rental_analytics.platform.progress import Progress

JOURNAL = "_PUBLISH.json"


@dataclass
class Publication:
    """The folders one run replaces or deletes, each built in a staging folder of its own first."""

    root: str
    moves: list[tuple[str, str]] = field(default_factory=list)  # (staged folder, the folder it replaces)
    deletions: list[str] = field(default_factory=list)
    backups: dict[str, str] = field(default_factory=dict)  # a replaced folder -> where its old content goes

    def stage(self, name: str, target: str, backup: str | None = None) -> str:
        """Where to build the folder that will replace `target`; with `backup`, the old `target` is kept there."""
        staged = f"{self.root.rstrip('/')}/{name}"
        self.moves.append((staged, target))
        if backup is not None:
            self.backups[target] = backup
        return staged

    def delete(self, target: str) -> None:
        """Remove `target` when the run is published."""
        self.deletions.append(target)


def _apply(spark: SparkSession, moves: list[tuple[str, str]], deletions: list[str], backups: dict[str, str]) -> None:
    # Each step can be repeated: a move whose staged folder is gone was done by an earlier attempt, and while
    # the staged folder is there the target is still the old one (or already in its backup).
    for staged, target in moves:
        if hadoop_fs.exists(spark, staged):
            if target in backups and hadoop_fs.exists(spark, target):
                hadoop_fs.replace(spark, target, backups[target])
            hadoop_fs.replace(spark, staged, target)
    for target in deletions:
        hadoop_fs.delete(spark, target)


def commit(spark: SparkSession, publication: Publication) -> None:
    """Write the journal, move every staged folder into place, then remove the staging."""
    # Qualified, so that a run started from another working directory finds the same folders to finish.
    moves = [(hadoop_fs.qualified(spark, staged), hadoop_fs.qualified(spark, t)) for staged, t in publication.moves]
    deletions = [hadoop_fs.qualified(spark, target) for target in publication.deletions]
    backups = {hadoop_fs.qualified(spark, t): hadoop_fs.qualified(spark, b) for t, b in publication.backups.items()}
    # Only recovery may take a missing staged folder for one already moved: here it was never built, or
    # something else removed it, and the journal would report a publication that never happened.
    missing = [staged for staged, _ in moves if not hadoop_fs.exists(spark, staged)]
    if missing:
        raise FileNotFoundError(f"nothing to publish: no staged folder {', '.join(missing)}")
    journal = {"moves": moves, "deletions": deletions, "backups": backups}
    hadoop_fs.write_text(spark, f"{publication.root.rstrip('/')}/{JOURNAL}", json.dumps(journal, indent=2))
    _apply(spark, moves, deletions, backups)
    hadoop_fs.delete(spark, publication.root)


def recover(spark: SparkSession, staging_parent: str, progress: Progress) -> None:
    """Finish every publication below `staging_parent` that reached its journal; drop the others' staging."""
    for name in hadoop_fs.list_names(spark, staging_parent):
        root = f"{staging_parent.rstrip('/')}/{name}"
        text = hadoop_fs.read_text(spark, f"{root}/{JOURNAL}")
        try:
            journal = json.loads(text) if text else None
        except ValueError:
            journal = None  # cut short while being written: no move had started
        if journal:
            progress(f"finishing the interrupted publication of {name}")
            moves = [(s, t) for s, t in journal["moves"]]
            _apply(spark, moves, list(journal["deletions"]), dict(journal.get("backups", {})))
        else:
            progress(f"removing the unfinished staging of {name}")
        hadoop_fs.delete(spark, root)
