"""The one canonical JSON spelling (sorted keys, no spaces, UTF-8 kept).

Entry keys, request parameter keys and stored fingerprints are compared as text in this
spelling (a row is ``ok`` when the stored fingerprint text equals the current one), so every
module must spell JSON through this function and no other.
"""

from __future__ import annotations

import json
from typing import Any


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
