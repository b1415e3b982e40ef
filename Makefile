# corrigo: `make demo` and `make test` work from a fresh clone.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# Caches that some model packages write under ~/.cache stay inside the tree.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MUJOCO_GL ?= osmesa
export PYOPENGL_PLATFORM ?= osmesa
export XDG_CACHE_HOME ?= $(CURDIR)/.cache
export MPLBACKEND := Agg
APT_PACKAGES := libosmesa6 libgl1 libglfw3 espeak-ng

.PHONY: install demo test bench soak apt clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@$(MAKE) --no-print-directory apt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned: here that takes the local CPU wheel (a looser pin pulls CUDA).
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[all,test]'
	touch $(STAMP)

# Debian packages for offscreen MuJoCo rendering and speech, installed only when missing.
apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

demo: $(STAMP)
	$(VENV)/bin/corrigo demo

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m bench

# The fault-injection suite's long versions (thousands of rounds); prints the counts at the end.
soak: $(STAMP)
	CORRIGO_SOAK=1 $(PY) -m pytest tests/faults -q -p no:cacheprovider --timeout 7200

clean:
	rm -rf $(VENV) .cache .pytest_cache build *.egg-info

# Batch retraining, end to end: demonstrations -> train -> collect with an operator -> retrain (--init)
# -> evaluate, twice, on the standard suite with the simulated operator (scripts/learn_iterations.sh,
# about 30 min; settings via OUT, SUITE, EPISODES, EPOCHS, OPERATOR, ...). The table: corrigo learn-report.
.PHONY: learn-iterations
learn-iterations: $(STAMP)
	PY=$(PY) bash scripts/learn_iterations.sh
