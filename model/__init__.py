"""Saliency models and croppers as Beam ``ModelHandler`` subclasses, made from a spec by
:func:`model_handler` (see :mod:`cropaudit.model.registry`; the interface: :mod:`.base`)."""


def model_handler(spec: str, **settings):
    """The Beam ``ModelHandler`` for a model spec (as ``--model``); see
    :func:`cropaudit.model.registry.model_handler` for ``settings``."""
    from cropaudit.model.registry import model_handler as make

    return make(spec, **settings)
