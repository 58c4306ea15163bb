#!/usr/bin/env bash
# A local Flink session cluster (JobManager, TaskManager, SDK worker pool) from the fetched engine:
#   deploy/flink-local.sh start|stop|status [--dir DIR] [--slots N] [--restart-attempts N]
# `start` prints FLINK_MASTER=... and WORKER_POOL=... (eval-able). See cropaudit/engine/flink_local.py.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" -m cropaudit.engine.flink_local "$@"
