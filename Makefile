# quickdraw: the two commands of the Quick start, and their building blocks.
# Both install missing system packages first (scripts/install-deps.sh).

CARGO ?= cargo

.PHONY: all deps build demo test completions clean

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	$(CARGO) build --release --locked --workspace

# The main job: the lab up, the target answering over verified TLS, the XDP program
# attached and passing foreign traffic, the lab down.
demo: build
	./target/release/bench demo

# The whole test suite. Privileged tests (BPF test-run, the lab) run too: they need root.
test: deps
	$(CARGO) test --locked --workspace

# Shell completions (bash, zsh, fish) and man pages for both binaries, from their clap
# definitions, into out/completions/ and out/man/.
completions: build
	./target/release/control generate --out out
	./target/release/bench generate --out out

clean:
	$(CARGO) clean
