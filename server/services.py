"""The process-wide objects every handler needs, built once by create_app.

``Services`` is declared in ``server.domain``, next to the domain declarations whose engines, hooks
and snapshot parts receive it (one module, so neither needs the other); most modules import it from
here.
"""

from __future__ import annotations

from server.domain import Services

__all__ = ["Services"]
