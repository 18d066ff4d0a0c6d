# tsunagi — the user-facing commands. CMake does the building.
#   make          build build/tsunagi (optimised)
#   make run      install what is missing, build, start the server (ARGS="--http 0.0.0.0:8080 ...")
#   make test     install what is missing, build with ASan+UBSan, run every test (ctest),
#                 each fuzz target included for FUZZ_TEST_SECONDS seconds (default 10)
#   make bench    run the benchmarks side by side with their peers, write bench/results/
#   make fuzz     run every fuzz target for FUZZ_SECONDS seconds each (default 60)
#   make soak     mixed load on the ASan+UBSan build for SOAK_SECONDS (default 1800), then
#                 check fds, RSS, metrics and a clean exit (tests/soak/soak.py)

BUILD       ?= build
ASAN_BUILD  ?= build-asan
FUZZ_BUILD  ?= build-fuzz
JOBS        ?= $(shell nproc)
FUZZ_SECONDS ?= 60
FUZZ_TEST_SECONDS ?= 10
SOAK_SECONDS ?= 1800
ARGS        ?=
CTEST_ARGS  ?=

.PHONY: all build run test bench fuzz soak deps clean format install

all: build

deps:
	@scripts/deps.sh build

$(BUILD)/Makefile:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTS_TESTS=OFF

build: $(BUILD)/Makefile
	@cmake --build $(BUILD) -j $(JOBS)

run: deps build
	./$(BUILD)/tsunagi $(ARGS)

test:
	@scripts/deps.sh test
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DTS_FUZZ=ON -DTS_TESTS=OFF
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DTS_SANITIZE=ON -DTS_TESTS=ON \
	    -DTS_FUZZ_BIN_DIR=$(abspath $(FUZZ_BUILD))/fuzz -DTS_FUZZ_SECONDS=$(FUZZ_TEST_SECONDS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

bench: build
	@scripts/deps.sh bench
	bench/run.sh

fuzz:
	@scripts/deps.sh fuzz
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DTS_FUZZ=ON -DTS_TESTS=OFF
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	scripts/fuzz.sh $(FUZZ_BUILD)/fuzz $(FUZZ_SECONDS)

soak:
	@scripts/deps.sh test
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DTS_SANITIZE=ON -DTS_TESTS=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS) --target tsunagi
	TSUNAGI_BIN=$(abspath $(ASAN_BUILD))/tsunagi TS_SOURCE_DIR=$(CURDIR) \
	    /usr/bin/python3 tests/soak/soak.py --seconds $(SOAK_SECONDS)

PREFIX ?= /usr/local
install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'bench/*.c')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
