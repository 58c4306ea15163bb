"""cropaudit: audit saliency-based image cropping for demographic bias at scale.

Data flow: manifests -> design (pairs, seeds) -> compose -> infer -> crop -> survival table
-> statistics -> report. Sub-packages: ``pipelines`` (whole Beam jobs), ``transforms`` (stages),
``model`` (saliency models), ``schemas`` (Parquet schemas), ``stats`` (pure statistics),
``experiments`` (versioned configs).
"""

__version__ = "0.1.0"
