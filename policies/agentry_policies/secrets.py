"""Secret detection for configuration values, backed by Yelp's detect-secrets.

Only the pattern plugins run (AWS keys, private keys, provider tokens, credentials in URLs,
secret-looking keywords): the entropy plugins flag ordinary ids such as model names. A value
that is a reference to a secret store (an ARN, an SSM path) is not a secret.
"""

from __future__ import annotations

import threading
from functools import lru_cache

__all__ = ["secret_kinds"]

_LOCK = threading.Lock()  # detect-secrets keeps its settings in a global; the analyzer is threaded
_SKIPPED = {"Base64HighEntropyString", "HexHighEntropyString", "IPPublicDetector"}
_REFERENCE_PREFIXES = ("arn:", "/", "{{resolve:")


@lru_cache(maxsize=1)
def _plugins() -> list[dict[str, str]]:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    classes: list[type] = list(get_mapping_from_secret_type_to_class().values())
    names = sorted(plugin.__name__ for plugin in classes)
    return [{"name": name} for name in names if name not in _SKIPPED]


@lru_cache(maxsize=4096)
def secret_kinds(name: str, value: str) -> tuple[str, ...]:
    """The kinds of secret detect-secrets finds in ``NAME="value"`` (empty: none)."""
    if not value or value.startswith(_REFERENCE_PREFIXES):
        return ()
    # Imported lazily: only functions with environment variables pay for it.
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import transient_settings

    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    with _LOCK, transient_settings({"plugins_used": _plugins()}):
        return tuple(sorted({secret.type for secret in scan_line(f'{name}="{escaped}"')}))
