"""cropaudit: audit saliency-based image cropping for demographic bias at scale.

Data flow: manifests -> design (pairs, seeds) -> compose -> infer -> crop -> survival table
-> statistics -> report. Sub-packages: ``pipelines`` (whole Beam jobs), ``transforms`` (stages),
``model`` (saliency models), ``schemas`` (Parquet schemas), ``stats`` (pure statistics),
``experiments`` (versioned configs).
"""

import os
import sys
import warnings

__version__ = "0.1.0"

#: TensorFlow turns its oneDNN CPU kernels on by default only on CPUs with AVX-512 VNNI/BF16 or
#: AMX; elsewhere (AVX2) it falls back to Eigen, which ran FastGaze 1.8x slower on the 2-core CI
#: machine and made a composite's scores depend, in the last bits, on its batch-mates. With oneDNN
#: each row of a full batch is computed independently of the others, so (with the fixed batch
#: size of :mod:`cropaudit.transforms.infer`) scores do not depend on how a runner split bundles.
#: TF reads this once, at import: cropaudit is imported before TensorFlow in every entry point
#: and worker. Set TF_ENABLE_ONEDNN_OPTS=0 to opt out; provenance records the state TF runs in.
if "tensorflow" in sys.modules and "TF_ENABLE_ONEDNN_OPTS" not in os.environ:
    warnings.warn(
        "TensorFlow was imported before cropaudit, so cropaudit could not switch on its oneDNN "
        "kernels: saliency scores may then depend on batching. Import cropaudit first, or set "
        "TF_ENABLE_ONEDNN_OPTS=1 before starting Python.",
        stacklevel=2,
    )
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

#: Beam 2.70 (pinned for its Flink runner) brings a grpcio that Google's client libraries warn
#: about on every import; the notice concerns their 2027 releases, not an audit.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.")
