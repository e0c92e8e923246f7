# keyward: the two commands a fresh Debian 12 machine needs.
#   make run    install what is missing, build, run keyward-agent in the foreground
#   make test   install what is missing, build, run every test
BUILD ?= build
JOBS ?= 2
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEYWARD_WERROR=ON

.PHONY: all setup build run test clean

all: build

setup:
	@scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# Prints the line to export in another shell, then serves until Ctrl-C.
run: build
	$(BUILD)/keyward-agent -D $(ARGS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

clean:
	rm -rf $(BUILD)
