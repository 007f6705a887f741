# The two commands of the README quick start (`make demo`, `make test`) and a few helpers.
# Works on a fresh Debian machine with Python 3.11: creates .venv, installs nox, and (as root)
# the Debian packages the tests drive; without root it prints what to install.

PYTHON ?= python3.11
VENV := .venv
NOX := $(VENV)/bin/nox
OTUS := $(VENV)/bin/otus
# Real components the tests start themselves (design §8), plus what builds the C extensions.
DEBIAN_PACKAGES := tshark sip-tester tcpdump tcpreplay libpcap-dev prometheus iproute2 \
	build-essential python3-dev python3-venv
# Interpreters installed by pyenv (3.10-3.13) for the otus-core test matrix.
PYENV_BINS := $(wildcard $(HOME)/.pyenv/versions/3.*/bin)
empty :=
space := $(empty) $(empty)
export PATH := $(subst $(space),:,$(strip $(PYENV_BINS) $(PATH)))
TEST_SESSIONS := lint typecheck tests integration example_plugin
# Distributions installed for the demo (every top-level folder with a pyproject.toml, core first).
DISTS := otus-core $(filter-out otus-core,$(patsubst %/pyproject.toml,%,$(wildcard */pyproject.toml)))

.PHONY: test demo lint bench build deps clean

test: deps $(NOX)
	$(NOX) -s $(TEST_SESSIONS)

# The README's first command: install everything into .venv, then run the main job on embedded
# defaults (no broker, no config file): the bundled capture of real sipp calls through the SIP
# parser to the console reporter; then, as root with sipp, a live capture of calls on loopback.
demo: $(NOX)
	$(VENV)/bin/pip install -q $(addprefix ./,$(DISTS))
	$(OTUS) plugins list
	@echo "== replay: otus run --pcap samples/sip-calls.pcap --parser sip  (see samples/README.md)"
	$(OTUS) run --pcap samples/sip-calls.pcap --parser sip --no-progress
	samples/live_demo.sh $(OTUS)

lint: $(NOX)
	$(NOX) -s lint

bench: $(NOX)
	$(NOX) -s bench

build: $(NOX)
	$(NOX) -s build

$(NOX):
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip nox

deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian packages:$$missing"; \
		echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	else \
		echo "Not root: install these Debian packages first (tests needing them skip, or fail in CI):"; \
		echo "  sudo apt-get install$$missing"; \
	fi

clean:
	rm -rf $(VENV) .nox dist
