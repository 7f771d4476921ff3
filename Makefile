# quickdraw: the two commands of the Quick start, and their building blocks.
# Both install missing system packages first (scripts/install-deps.sh).

CARGO ?= cargo

.PHONY: all deps build demo test completions fuzz clean install

# `make install`: the binaries, the systemd unit, the example configuration and the
# README, under $(DESTDIR)$(PREFIX) (the configuration under $(DESTDIR)$(SYSCONFDIR)).
# BUILD_DIR holds the binaries to install; they are built (release) when missing.
PREFIX ?= /usr/local
DESTDIR ?=
SYSCONFDIR ?= /etc
BINDIR ?= $(PREFIX)/bin
UNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR ?= $(PREFIX)/share/doc/quickdraw
BUILD_DIR ?= target/release

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
	$(CARGO) test --locked -p quickdraw-datapath --doc --features xsk-doctests

# Shell completions (bash, zsh, fish) and man pages for both binaries, from their clap
# definitions, into out/completions/ and out/man/.
completions: build
	./target/release/control generate --out out
	./target/release/bench generate --out out
# Every fuzz target for FUZZ_SECONDS each (one process, one job: the machine is shared),
# or only FUZZ_TARGETS. Needs the nightly toolchain; installs cargo-fuzz when missing.
# Seeds come from <crate>/fuzz/corpus/<target> (committed, read only); what the fuzzer
# adds goes to target/fuzz-corpus/<target>, crashes to <crate>/fuzz/artifacts/<target>.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= datapath/http_response datapath/tls_record datapath/session_receive \
	datapath/rx_gate control/journal_replay control/control_decode config/config_load
# No sanitizer by default: the fuzzed code has no `unsafe` of its own (debug assertions
# and overflow checks stay on); FUZZ_FLAGS="-s address" for ASan at about half the speed.
FUZZ_FLAGS ?= -s none
# More libFuzzer flags, e.g. FUZZ_ARGS=-runs=10000000 to stop at an execution count.
FUZZ_ARGS ?=

fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	@for t in $(FUZZ_TARGETS); do \
		crate=$${t%%/*}; name=$${t##*/}; \
		mkdir -p target/fuzz-corpus/$$name; \
		echo "== fuzz $$crate $$name for $(FUZZ_SECONDS) s"; \
		( cd $$crate && CARGO_TARGET_DIR=$(CURDIR)/target/fuzz \
			$(CARGO) +nightly fuzz run $(FUZZ_FLAGS) --fuzz-dir fuzz $$name \
			$(CURDIR)/target/fuzz-corpus/$$name fuzz/corpus/$$name -- \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(FUZZ_ARGS) ) || exit 1; \
	done

clean:
	$(CARGO) clean

$(BUILD_DIR)/control $(BUILD_DIR)/bench:
	$(MAKE) build

# An existing /etc/quickdraw/quickdraw.toml is never overwritten; the example is always
# installed beside it as quickdraw.toml.example.
install: $(BUILD_DIR)/control $(BUILD_DIR)/bench
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/quickdraw
	install -m 0755 $(BUILD_DIR)/control $(BUILD_DIR)/bench $(DESTDIR)$(BINDIR)/
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' deploy/quickdraw.service \
		> $(DESTDIR)$(UNITDIR)/quickdraw.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/quickdraw.service
	install -m 0644 config/example-baremetal.toml $(DESTDIR)$(SYSCONFDIR)/quickdraw/quickdraw.toml.example
	[ -e $(DESTDIR)$(SYSCONFDIR)/quickdraw/quickdraw.toml ] || \
		install -m 0644 config/example-baremetal.toml $(DESTDIR)$(SYSCONFDIR)/quickdraw/quickdraw.toml
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
