"""The audit pipeline's own stage (ManifestFaces): what the driver read, handed to the pipeline."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from cropaudit.pipelines.audit_pipeline import ManifestFaces
from cropaudit.pipelines.demo_pipeline import embedded_config
from cropaudit.transforms.design import index_groups
from cropaudit.transforms.manifests import load_faces
from cropaudit.transforms.run_plan import AuditInputs
from tests.test_stages import local_pipeline

MANIFEST = """image_id,image_uri,subject_id,tone,hair
a1,a1.jpg,s1,light,dark
b1,b1.jpg,s2,dark,light
b1,b1b.jpg,s3,dark,light
"""


def test_manifest_faces_gives_the_group_index_and_dead_letters_a_duplicate_image_id(tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(MANIFEST)
    config = embedded_config()  # groups by tone, then hair: "tone/hair"
    faces, dead = load_faces(str(manifest), config)
    index = index_groups(faces, config.groups.attributes)
    inputs = AuditInputs(str(manifest), faces, dead, index, cells=[], expected=0)
    with local_pipeline() as p:
        read = p | ManifestFaces(inputs)
        assert_that(
            read.index
            | beam.FlatMap(
                lambda idx: [
                    (group, f.image_id, f.image_uri, f.subject_id)
                    for group, by_subject in idx.items()
                    for subject_faces in by_subject.values()
                    for f in subject_faces
                ]
            ),
            equal_to(
                [
                    ("light/dark", "a1", str(tmp_path / "a1.jpg"), "s1"),
                    ("dark/light", "b1", str(tmp_path / "b1.jpg"), "s2"),
                ]
            ),
        )
        assert_that(
            read.dead_letter | beam.Map(lambda d: (d.stage, d.reason, d.element_id)),
            equal_to([("manifest", "duplicate_image_id", "b1")]),
            label="DeadLetters",
        )
