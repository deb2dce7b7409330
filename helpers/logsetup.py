"""Logging, configured once at start-up: text or JSON lines, to stderr or a file."""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class ReopenableFileHandler(logging.FileHandler):
    """A file handler that SIGHUP can reopen after logrotate moved the file."""

    def reopen(self) -> None:
        self.acquire()
        try:
            if self.stream:
                self.stream.close()
            self.stream = self._open()
        finally:
            self.release()


def setup_logging(level: str, fmt: str, file: str | None = None) -> None:
    handler: logging.Handler = ReopenableFileHandler(file) if file else \
        logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        # journald adds its own timestamps; a file gets them from us.
        prefix = "%(asctime)s " if file else ""
        handler.setFormatter(logging.Formatter(prefix + "%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
