"""A stand-in for the Lambda runtime, run by a bare `python3.12 -I -S`: import one built handler and invoke it.

Arguments: a JSON file naming the function's folder, its layers' folders, the handler (`module.function`),
the event file and where to write the answer. The path holds the function's folder, then each layer's
`python/` folder, as Lambda puts /var/task and /opt/python, and the interpreter's standard library: nothing
of the environment that runs the tests. Only loopback is reachable. Standard library only, Python 3.12.
"""

import importlib
import json
import socket
import sys
import traceback


def _loopback_only() -> None:
    connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("/"):
            raise OSError(f"the built function tried to reach {host}")
        return connect(self, address)

    socket.socket.connect = guarded


class Context:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    def __init__(self, name: str, memory_mb: int, timeout_seconds: int) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        self.aws_request_id = "a5b7c9d1-0000-4000-8000-000000000001"
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "2024/06/02/[$LATEST]0123456789abcdef"
        self._timeout = timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return self._timeout * 1000


def main() -> int:
    with open(sys.argv[1]) as spec_file:
        spec = json.load(spec_file)
    sys.path[:0] = [spec["function_dir"], *spec["layer_dirs"]]
    _loopback_only()
    answer = {"ok": False}
    try:
        module_name, function_name = spec["handler"].rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), function_name)
        with open(spec["event_file"]) as event_file:
            event = json.load(event_file)
        result = handler(event, Context(spec["name"], spec["memory_mb"], spec["timeout_seconds"]))
        answer = {"ok": True, "result": result}
    except BaseException as error:  # the test reads what failed, as Lambda's error response would say it
        answer = {"ok": False, "error": type(error).__name__, "message": str(error), "trace": traceback.format_exc()}
    outside = sorted(
        {
            module.__file__
            for module in list(sys.modules.values())
            if getattr(module, "__file__", None) not in (None, __file__)
            and not any(module.__file__.startswith(folder) for folder in [*sys.path[: 1 + len(spec["layer_dirs"])]])
            and not module.__file__.startswith(sys.base_prefix)
        }
    )
    answer["modules_from_elsewhere"] = outside
    with open(spec["answer_file"], "w") as answer_file:
        json.dump(answer, answer_file, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
