"""How values are stored: the JSON codec of a workflow's states, events, requests and responses.

``JsonCodec`` is what a workflow uses unless it names another; ``type_tag`` gives a class
a stored name that survives renames. ``encoder_for`` / ``decoder_for`` / ``tag_of`` are the
per-type functions the engine's snapshots and the runtimes build on; ``json_schema``
describes the JSON of a type (for forms and API specifications).
"""

from ._codec import JsonCodec, decoder_for, encoder_for, json_schema, tag_of, type_tag

__all__ = ["JsonCodec", "decoder_for", "encoder_for", "json_schema", "tag_of", "type_tag"]
