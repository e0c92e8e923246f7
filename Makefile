# keyward: the two commands a fresh Debian 12 machine needs.
#   make run    install what is missing, build, run keyward-agent in the foreground
#   make test   install what is missing, build, run every test
#   make repro  the seed report end to end, keyward beside OpenSSH and a Windows-like agent
#   make win    cross-build keyward-agent.exe and the Windows tests (build-win/)
#   make build-pq   keyward against OpenSSL 3.5 under ASan/UBSan, with OpenSSH
#               from Debian's source, both built once into the cache (build-pq/)
#   make test-fresh   make test on a brand-new Debian 12 root (debootstrap, chroot)
#   make deb     the Debian package in build-deb/ (dpkg-buildpackage, lintian)
#   make test-deb     make deb, and that package installed, used and purged, in fresh Debian 12 roots
#   make msi     the Windows installer, build-win/keyward-VERSION.msi (wixl)
BUILD ?= build
ASAN_BUILD ?= build-asan
WIN_BUILD ?= build-win
JOBS ?= 2
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEYWARD_WERROR=ON

.PHONY: repro all setup build build-asan win run test test-fresh clean

all: build

setup:
	@scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# The same tree under AddressSanitizer and UndefinedBehaviorSanitizer: every
# report fails the test that triggered it (UBSan aborts; the e2e tests grep
# the agent's log after a clean shutdown for ASan and LeakSanitizer reports).
build-asan: setup
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DKEYWARD_SANITIZE=ON -DKEYWARD_WERROR=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)

# The Windows build: static OpenSSL and libuv cross-built once into a cache
# (scripts/win-deps.sh prints their prefix last), then keyward with mingw-w64.
# The Wine prefix the win_* tests share is made here, once, so that tests
# running in parallel never race to create it.
win: setup
	@prefix=$$(scripts/win-deps.sh | tail -n 1) && test -n "$$prefix" && \
	cmake -S . -B $(WIN_BUILD) -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake \
		-DKEYWARD_WIN_DEPS="$$prefix" $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(WIN_BUILD) -j$(JOBS)
	@tests/win/wineprefix.sh $(abspath $(WIN_BUILD))/wineprefix

# Prints the line to export in another shell, then serves until Ctrl-C.
run: build
	$(BUILD)/keyward-agent -D $(ARGS)

# The Linux build's ctest also runs the Windows programs under Wine (win_*).
# A skipped test fails make test too (scripts/ctest-strict.sh).
test: build build-asan win build-pq
	@cmake -S . -B $(BUILD) -DKEYWARD_WIN_BUILD_DIR=$(abspath $(WIN_BUILD)) >/dev/null
	scripts/ctest-strict.sh $(BUILD) $(JOBS)
	scripts/ctest-strict.sh $(ASAN_BUILD) $(JOBS)
	scripts/ctest-strict.sh $(PQ_BUILD) $(JOBS) -L pq

# The README's `make test` as a newcomer runs it: the committed HEAD cloned
# into a fresh debootstrap'd Debian 12 root that gets only git and make, so
# that nothing installed by hand on this machine can hide a missing install
# step (scripts/test-fresh.sh).
test-fresh:
	scripts/test-fresh.sh

# The seed report end to end, with a side-by-side table (also a CTest).
repro: build
	tests/repro/seed.sh $(BUILD)/tests/shared_mux \
		keyward-agent:survives:$(BUILD)/keyward-agent \
		openssh:survives:/usr/bin/ssh-agent \
		windows-like:breaks:$(BUILD)/tests/closing_agent

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(WIN_BUILD) $(DEB_BUILD) $(PQ_BUILD)

# --- install ---
#   make install [PREFIX=/usr/local] [DESTDIR=/staging]
#       the programs, their manual pages and the systemd user units
#       (PREFIX/lib/systemd/user, whose ExecStart names PREFIX/bin)
#   make uninstall [DESTDIR=/staging]
#       removes exactly the files the last install listed in
#       $(BUILD)/install_manifest.txt (give it the DESTDIR install had)
PREFIX ?= /usr/local
.PHONY: install uninstall

install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

uninstall:
	DESTDIR="$(DESTDIR)" scripts/uninstall.sh $(BUILD)/install_manifest.txt

# --- Debian package ---
#   make deb
#       keyward_VERSION_ARCH.deb (with its .changes and .buildinfo) in
#       $(DEB_BUILD)/, built by `dpkg-buildpackage -us -uc -b` from debian/
#       on a copy of the tree in $(DEB_BUILD)/keyward-VERSION/, then checked
#       with lintian: an error or a warning fails (scripts/build-deb.sh).
#       Install it with `apt install ./$(DEB_BUILD)/keyward_VERSION_ARCH.deb`.
#   make test-deb
#       make deb as a newcomer runs it (the committed HEAD, in a brand-new
#       Debian 12 root with only git and make; the package and logs copied
#       to $(DEB_BUILD)/fresh/), then that package in another fresh root:
#       apt install, an agent session as a normal user (ssh-add,
#       ssh-keygen -Y sign and verify), the user units verified, apt purge
#       leaving nothing behind (scripts/test-deb.sh; the fresh roots are
#       make test-fresh's, scripts/lib/fresh-root.sh). To test the package
#       make deb just built from the working tree instead:
#       scripts/test-deb.sh $(DEB_BUILD)/keyward_VERSION_ARCH.deb
DEB_BUILD ?= build-deb
.PHONY: deb test-deb

deb:
	@scripts/setup.sh deb
	scripts/build-deb.sh $(DEB_BUILD)

test-deb:
	KEYWARD_DEB_FRESH_OUT=$(abspath $(DEB_BUILD))/fresh scripts/test-deb.sh

# --- Windows installer ---
#   make msi
#       make win, then build-win/keyward-VERSION.msi (VERSION: project() in
#       CMakeLists.txt) from packaging/windows/keyward.wxs with wixl, which
#       scripts/setup.sh installs (package wixl) with the rest of the win
#       set-up (scripts/build-msi.sh; the staged files in the .msi.d folder
#       beside it). Per user, no elevation: docs/windows.md. make test runs
#       win_msi, which builds its own two .msi files and installs, upgrades
#       and removes them with Wine's msiexec (tests/win/msi.sh).
.PHONY: msi

msi: win
	scripts/build-msi.sh $(WIN_BUILD) $(WIN_BUILD)/keyward-$$(sed -n 's/^project(keyward VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt).msi

# --- fuzz ---
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_HARNESSES="dispatch key ..."]
#       builds the libFuzzer harnesses with clang in $(FUZZ_BUILD) and runs
#       each for FUZZ_SECONDS, seeded from ../shared/corpus (fuzz/README.md);
#       fails if any of them finds a crash, a leak or a timeout, printing
#       each input found in base64. CI (.ci/run) runs it after make test.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_HARNESSES ?=
.PHONY: fuzz

fuzz:
	fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_HARNESSES)

# --- bench ---
#   make bench [BENCH_ARGS="--window 2 --reps 3 --conns 10000"]
#       builds keyward-agent and bench/agent_bench in $(BENCH_BUILD) (Release,
#       -O2), runs it against keyward-agent and /usr/bin/ssh-agent, prints one
#       table and writes the numbers as JSON to $(BENCH_OUT)/bench-TIME.json
#       and $(BENCH_OUT)/latest.json (docs/performance.md); also keyward-relay
#       in front of the agent and its stage timing. Takes ~8 minutes.
BENCH_BUILD ?= build-bench
BENCH_OUT ?= $(BUILD)/bench
BENCH_ARGS ?=
.PHONY: bench

bench: setup
	@cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" \
		-DKEYWARD_WERROR=ON >/dev/null
	@cmake --build $(BENCH_BUILD) -j$(JOBS) --target keyward-agent keyward-relay agent_bench
	@mkdir -p $(BENCH_OUT)
	$(BENCH_BUILD)/agent_bench --keyward $(BENCH_BUILD)/keyward-agent --openssh /usr/bin/ssh-agent \
		--out $(BENCH_OUT) $(BENCH_ARGS)

# --- soak (issue 20) ---
#   make soak [SOAK_SECONDS=600]
#       builds keyward-agent and bench/soak.c's agent_soak in $(BUILD), then
#       bench/soak.sh: keyward-agent on its own socket with an approving
#       askpass, a private sshd on 127.0.0.1, and a steady mix of clients for
#       SOAK_SECONDS (list, sign with every key type and a certificate, a
#       confirm key, add and remove, lock and unlock, malformed, oversized
#       and vanishing clients, forwarded ssh -A sessions). Fails unless
#       every request got its expected reply and the agent's RSS, open fds
#       and threads stay flat after the warm-up (least-squares slopes under
#       stated limits). Writes $(SOAK_OUT)/soak-TIME.json and .dat,
#       latest.json and soak.png (gnuplot; docs/performance.md, "Soak").
#       CI (.ci/run) runs it for 60 s after make test.
SOAK_SECONDS ?= 600
SOAK_OUT ?= $(BUILD)/soak
.PHONY: soak

soak: build
	bench/soak.sh $(BUILD)/keyward-agent $(BUILD)/agent_soak $(SOAK_OUT) $(SOAK_SECONDS)

# --- bench under Wine (issue 20) ---
#   make bench-wine [WINE_BENCH_ARGS="-w 2 -r 3"]
#       make win, then keyward-agent.exe on a named pipe under Wine measured
#       by win_bench.exe (bench/wine_bench.sh): the sign and list rows of
#       make bench, no targets (Wine is not Windows). About two minutes.
WINE_BENCH_ARGS ?=
.PHONY: bench-wine

bench-wine: win
	bench/wine_bench.sh $(abspath $(WIN_BUILD)) $(WINE_BENCH_ARGS)

# --- post-quantum keys (issue 19) ---
#   make build-pq
#       keyward built against OpenSSL 3.5 (ML-DSA; Debian 12 has 3.0) under
#       ASan/UBSan in $(PQ_BUILD), told where OpenSSH built from Debian
#       unstable's source is (KEYWARD_OPENSSH_DIR). Both come from
#       scripts/pq-deps.sh, built once into the cache. make test runs its
#       tests labelled "pq": the ML-DSA unit tests and the end-to-end suites
#       with that OpenSSH's tools and sshd (tests/CMakeLists.txt). A new
#       OpenSSL prefix means a fresh CMake cache (pkg-config's result is cached).
PQ_BUILD ?= build-pq
.PHONY: build-pq

build-pq: setup
	@ossl=$$(scripts/pq-deps.sh openssl | tail -n 1) && test -n "$$ossl" && \
	ossh=$$(scripts/pq-deps.sh openssh | tail -n 1) && test -n "$$ossh" && \
	if [ "$$(cat $(PQ_BUILD)/.pq-deps 2>/dev/null)" != "$$ossl $$ossh" ]; then \
		rm -f $(PQ_BUILD)/CMakeCache.txt; mkdir -p $(PQ_BUILD); \
		echo "$$ossl $$ossh" >$(PQ_BUILD)/.pq-deps; fi && \
	cmake -S . -B $(PQ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DKEYWARD_SANITIZE=ON -DKEYWARD_WERROR=ON \
		-DCMAKE_PREFIX_PATH="$$ossl" -DKEYWARD_OPENSSH_DIR="$$ossh" >/dev/null
	@cmake --build $(PQ_BUILD) -j$(JOBS)
