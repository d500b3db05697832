# vmail.mailserver: the two commands a user needs are `make demo` and `make test`.
# Both run `make setup` first (idempotent: packages, Docker engine, venv, base images).
SHELL := /bin/bash
VENV ?= .venv
export VENV
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.cache/collections:$(HOME)/.ansible/collections
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: setup demo demo-destroy test test-quick sanity unit lint galaxy install-check molecule clean

setup:
	scripts/setup.sh

## The main job: a demo mail server in a local container, a message sent and fetched.
demo: setup
	scripts/demo.sh

demo-destroy:
	molecule destroy -s demo

## Every test: sanity, module tests against a real MariaDB, lint, Molecule on Debian 12 and 13.
test: setup
	scripts/test.sh

## The inner loop (about 10 minutes): sanity, module tests, lint, and one Debian 12
## converge with the mail-flow tests (molecule/quick). Not a substitute for `make test`.
test-quick: setup
	VMAIL_TEST_STAGES="sanity modules lint quick" scripts/test.sh

sanity:
	scripts/sanity.sh

unit:
	scripts/test-modules.sh

lint:
	ansible-lint --profile production

## galaxy-importer (Galaxy's own checks) on the built tarball, in its own venv.
galaxy:
	scripts/galaxy-import.sh

## The deploy-only controller path: the built tarball and requirements.yml in a fresh
## venv with only ansible-core, then the playbooks' syntax check (offline, under a minute).
install-check:
	scripts/test-install.sh

molecule:
	molecule test -s default

clean:
	-molecule destroy -s default
	-molecule destroy -s demo
	-molecule destroy -s quick
	rm -rf .cache tests/output
