"""Saliency models and croppers as Beam ``ModelHandler`` subclasses, made from a spec by
:func:`model_handler` (see :mod:`cropaudit.model.registry`; the interface: :mod:`.base`).
The package itself imports nothing, so the config can read its defaults cheaply."""

#: Rows per prediction call unless configured (``model.batch_size``'s default).
DEFAULT_BATCH_SIZE = 16


def model_handler(spec: str, **settings):
    """The Beam ``ModelHandler`` for a model spec (as ``--model``); see
    :func:`cropaudit.model.registry.model_handler` for ``settings``."""
    from cropaudit.model.registry import model_handler as make

    return make(spec, **settings)
