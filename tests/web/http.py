"""Plain HTTP through curl, exactly as written (`--path-as-is`: no client-side normalisation)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-cased names; the last value of a repeated header
    header_lines: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def count(self, name: str) -> int:
        return sum(1 for key, _ in self.header_lines if key == name.lower())


def curl(url: str, *args: str, data: bytes | None = None) -> Answer:
    """One request with `curl --path-as-is`; extra curl arguments as given."""
    command = ["curl", "-sS", "--path-as-is", "--max-time", "40", "-D", "-", "-o", "-", *args]
    if data is not None:
        command += ["--data-binary", "@-"]
    result = subprocess.run(
        [*command, url], input=data, capture_output=True, check=True, timeout=60
    )
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    pairs = []
    for line in lines:
        name, _, value = line.partition(":")
        pairs.append((name.strip().lower(), value.strip()))
    return Answer(int(status_line.split()[1]), dict(pairs), pairs, body)
