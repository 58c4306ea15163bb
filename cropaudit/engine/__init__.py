"""The Flink engine cropaudit runs on: the verified job-server and Flink cache (:mod:`.cache`),
the step that fills it (:mod:`.fetch`) and a local standalone cluster (:mod:`.flink_local`)."""
