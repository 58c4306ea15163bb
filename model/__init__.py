"""Saliency models behind one small interface (:mod:`cropaudit.model.base`)."""
