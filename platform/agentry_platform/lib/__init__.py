"""Pure helpers behind the components: they declare no resources and are tested directly.

``naming``, ``iam`` (policy documents), ``bedrock`` (model grants per profile kind),
``model_catalog`` (the dated Bedrock catalog), ``kms`` (how each service uses a key, as AWS
documents it), ``limits`` (time and size limits that must agree), ``operations`` (dashboard body
and alarm thresholds), ``patterns`` (event patterns), ``recovery_definition`` (the recovery
state machine's ASL).
"""

__all__: list[str] = []
