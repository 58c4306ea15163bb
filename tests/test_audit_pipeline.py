"""The audit pipeline's own stage (ReadFaces) on a few manifest rows."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from cropaudit.pipelines.audit_pipeline import ReadFaces
from cropaudit.pipelines.demo_pipeline import embedded_config
from tests.test_stages import local_pipeline

MANIFEST = """image_id,image_uri,subject_id,tone,hair
a1,a1.jpg,s1,light,dark
b1,b1.jpg,s2,dark,light
b1,b1b.jpg,s3,dark,light
"""


def test_read_faces_gives_faces_and_dead_letters_a_duplicate_image_id(tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(MANIFEST)
    config = embedded_config()  # groups by tone and hair
    with local_pipeline() as p:
        read = p | ReadFaces(str(manifest), config)
        assert_that(
            read.faces | beam.Map(lambda f: (f.image_id, f.image_uri, f.subject_id, f.attributes)),
            equal_to(
                [
                    ("a1", str(tmp_path / "a1.jpg"), "s1", (("hair", "dark"), ("tone", "light"))),
                    ("b1", str(tmp_path / "b1.jpg"), "s2", (("hair", "light"), ("tone", "dark"))),
                ]
            ),
        )
        assert_that(
            read.dead_letter | beam.Map(lambda d: (d.stage, d.reason, d.element_id)),
            equal_to([("manifest", "duplicate_image_id", "b1")]),
            label="DeadLetters",
        )
