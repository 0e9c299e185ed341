"""Pure helpers behind the components: they declare no resources and are tested directly.

``naming``, ``iam`` (policy documents), ``bedrock`` (model grants), ``patterns`` (event
patterns), ``recovery_definition`` (the recovery state machine's ASL).
"""

__all__: list[str] = []
