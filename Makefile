# kube-bundle. `make bundle` builds bundles from the example inventory; `make test` runs
# the test suite (installing the Debian packages it needs when run as root); `make ci` is
# exactly what CI runs. `make bench` compares kube-bundle with the tutorial's flow and
# measures what `push` uploads for 30 masters (not in CI).

CONFIG ?= examples/cluster.toml
OUT ?= dist
CARGO ?= cargo

.PHONY: bundle test lint e2e ci deps deps-e2e bench man completions

bundle:
	$(CARGO) run --release --locked --quiet -- build -c $(CONFIG) -o $(OUT)

# Man pages (kube-bundle.1 and one per subcommand) and shell completions, generated from
# the same command definitions as --help.
man:
	$(CARGO) run --release --locked --quiet -- man -o target/man

completions:
	mkdir -p target/completions
	for sh in bash zsh fish; do \
	    $(CARGO) run --release --locked --quiet -- completions $$sh >target/completions/kube-bundle.$$sh || exit 1; \
	done

deps:
	bash scripts/deps.sh

deps-e2e:
	bash scripts/deps.sh e2e

test: deps
	$(CARGO) test --locked

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings
	bash -n scripts/bench.sh
	bash -n scripts/bench-push.sh
	shellcheck scripts/*.sh scripts/e2e/*.sh

e2e: deps-e2e
	$(CARGO) build --release --locked
	bash scripts/e2e/build-k8s.sh
	bash scripts/e2e/images.sh
	bash scripts/e2e/run.sh

bench: deps
	$(CARGO) build --release --locked
	bash scripts/bench.sh
	bash scripts/bench-push.sh

ci: lint test e2e
