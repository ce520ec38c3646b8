"""Renderings of a definition or of an instance's progress, for people: a text tree for logs
and terminals (``text``).

The renderers read the progress model only (``workflows4py.engine``): a definition is first
turned into its progress with nothing run (``progress_of``), so a draft renders like a real
definition.
"""

from ._bpmn import bpmn
from ._mermaid import mermaid, mermaid_live_url
from ._text import text

__all__ = ["bpmn", "mermaid", "mermaid_live_url", "text"]
