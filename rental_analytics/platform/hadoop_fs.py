"""Listing and deleting paths through Hadoop's FileSystem, so one code path serves local disks and S3."""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession


def _path_and_fs(spark: SparkSession, path: str) -> tuple[Any, Any]:
    context: Any = spark.sparkContext  # py4j gateway attributes are untyped
    hadoop_path = context._jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path, hadoop_path.getFileSystem(context._jsc.hadoopConfiguration())


def qualified(spark: SparkSession, path: str) -> str:
    """The path with its file system and, for a relative local path, the working directory it is relative to."""
    hadoop_path, fs = _path_and_fs(spark, path)
    return str(fs.makeQualified(hadoop_path).toString())


def exists(spark: SparkSession, path: str) -> bool:
    """True when a file or folder exists at the path."""
    hadoop_path, fs = _path_and_fs(spark, path)
    return bool(fs.exists(hadoop_path))


def _entries(spark: SparkSession, folder: str) -> list[Any]:
    hadoop_path, fs = _path_and_fs(spark, folder)
    return list(fs.listStatus(hadoop_path)) if fs.exists(hadoop_path) else []


def list_names(spark: SparkSession, folder: str) -> list[str]:
    """The names of the entries directly below a folder; empty when it does not exist."""
    return sorted(str(status.getPath().getName()) for status in _entries(spark, folder))


def list_file_names(spark: SparkSession, folder: str) -> list[str]:
    """The names of the files directly below a folder, without its folders; empty when it does not exist."""
    return sorted(str(status.getPath().getName()) for status in _entries(spark, folder) if status.isFile())


def partition_values(spark: SparkSession, folder: str, column: str) -> set[str]:
    """The values of a table folder's `column=` partitions; none when the folder is missing or holds none."""
    prefix = f"{column}="
    return {name[len(prefix) :] for name in list_names(spark, folder) if name.startswith(prefix)}


def delete(spark: SparkSession, path: str) -> None:
    """Delete a file or a folder with everything below it; a missing path is fine."""
    hadoop_path, fs = _path_and_fs(spark, path)
    fs.delete(hadoop_path, True)


def write_text(spark: SparkSession, path: str, text: str) -> None:
    """Write a small UTF-8 text file, replacing any file already there."""
    hadoop_path, fs = _path_and_fs(spark, path)
    stream = fs.create(hadoop_path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def read_text(spark: SparkSession, path: str) -> str | None:
    """A small UTF-8 text file's content, or None when there is no file at the path."""
    hadoop_path, fs = _path_and_fs(spark, path)
    if not fs.exists(hadoop_path):
        return None
    context: Any = spark.sparkContext
    stream = fs.open(hadoop_path)
    try:
        return str(context._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
    finally:
        stream.close()


def replace(spark: SparkSession, source: str, target: str) -> None:
    """Move a folder to `target`, replacing what is there (a copy and delete on S3, a rename on disks)."""
    source_path, fs = _path_and_fs(spark, source)
    target_path, _ = _path_and_fs(spark, target)
    fs.delete(target_path, True)
    parent = target_path.getParent()
    if parent is not None:
        fs.mkdirs(parent)
    if not fs.rename(source_path, target_path):
        raise OSError(f"could not move {source} to {target}")
    # Cached plans over the old files would otherwise be reused for the new ones and fail to find them.
    spark.catalog.refreshByPath(target)
