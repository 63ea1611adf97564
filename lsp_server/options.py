"""Server settings: ``initializationOptions`` and the ``semcode`` configuration section.

Each key is validated on its own, so one bad value falls back to its default and is reported,
while the other settings still apply.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from engine.config import EngineConfig
from engine.errors import ConfigError

LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
SERVER_KEYS = {"references", "logLevel", "trace"}


@dataclass(frozen=True, slots=True)
class ServerOptions:
    engine: EngineConfig = field(default_factory=EngineConfig)
    references_similar_code: bool = False
    log_level: str = "info"


def parse_options(raw: Any) -> tuple[ServerOptions, list[str]]:
    """Options from a client's settings object, and the errors (one message per rejected key)."""
    if raw is None:
        return ServerOptions(), []
    if not isinstance(raw, dict):
        return ServerOptions(), [f"settings must be an object, got {type(raw).__name__}; using defaults"]
    errors: list[str] = []
    engine_settings: dict[str, Any] = {}
    for key, value in raw.items():
        if key in SERVER_KEYS:
            continue
        try:
            EngineConfig.from_dict({key: value})
        except ConfigError as exc:
            errors.append(f"{exc}; using the default")
            continue
        engine_settings[key] = value
    engine = EngineConfig.from_dict(engine_settings)

    similar = False
    references = raw.get("references", {})
    if isinstance(references, dict) and "similarCode" in references:
        if isinstance(references["similarCode"], bool):
            similar = references["similarCode"]
        else:
            errors.append(f"setting 'references.similarCode' must be true or false, got {references['similarCode']!r}")
    elif references not in ({}, None):
        errors.append("setting 'references' must be an object like {\"similarCode\": true}")
    level = raw.get("logLevel", "info")
    if not isinstance(level, str) or level.lower() not in LOG_LEVELS:
        errors.append(f"setting 'logLevel' must be one of {', '.join(LOG_LEVELS)}, got {level!r}; using info")
        level = "info"
    return ServerOptions(engine, similar, level.lower()), errors


def merge_settings(*layers: Any) -> Any:
    """Later layers win; nested objects (``references``) merge key by key."""
    merged: dict[str, Any] = {}
    for layer in layers:
        if layer is None:
            continue
        if not isinstance(layer, dict):
            return layer  # let parse_options report it
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    return merged
