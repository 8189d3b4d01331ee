# The two commands a new user needs (make train, make test), and a few for developers.
# Everything real happens in CMake; this file only installs packages and calls it.

BUILD   ?= build
ASAN    ?= build-asan
TSAN    ?= build-tsan
FUZZ    ?= build-fuzz
FUZZ_SECONDS ?= 600
MODEL   ?= baseline
ARGS    ?=
JOBS    ?= $(shell nproc)

.PHONY: all train train-reference reproduce bench generated test check asan tsan valgrind fuzz fuzz-build deps clean

all: $(BUILD)/cnnc

$(BUILD)/cnnc: FORCE
	@scripts/deps.sh build
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Train the baseline network on Fashion-MNIST, compiled by cnnc (MODEL=dropout, l1, l2,
# batchnorm for the others; ARGS="--epochs 1" etc. for flags).
train:
	@scripts/deps.sh train
	@$(MAKE) --no-print-directory all
	$(BUILD)/$(MODEL) train $(ARGS)

# The same with the interpreted reference: slow, obviously correct.
train-reference:
	@scripts/deps.sh train
	@$(MAKE) --no-print-directory all
	$(BUILD)/cnnc run models/$(MODEL).net train $(ARGS)

# The whole Fashion-MNIST study from models/ into results/ (about 50 minutes on 2 cores).
reproduce:
	@scripts/deps.sh train
	@$(MAKE) --no-print-directory all
	@scripts/reproduce.sh $(BUILD) results

# Speed against PyTorch on this machine (bench/run.sh; NET=models/dropout.net for another).
bench:
	@scripts/deps.sh build
	@bench/run.sh $(BUILD) $(or $(NET),models/baseline.net)

# Rewrite the checked-in generated/ after a change to the compiler or to models/.
generated: all
	@scripts/regenerate.sh $(BUILD)/cnnc

# Every test: the CMocka suite, again under ASan+UBSan built with clang, the thread pool
# under ThreadSanitizer, valgrind, and each fuzz target for 30 seconds.
test:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory check asan tsan valgrind
	@$(MAKE) --no-print-directory fuzz-build
	@scripts/fuzz.sh $(FUZZ) 30

# The CMocka suite only (gcc, Release).
check: all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The suite built with clang under AddressSanitizer and UndefinedBehaviorSanitizer, and
# portable (no -march=native): the generated code must not need this machine.
asan:
	@CC=clang cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCNNC_SANITIZE=ON -DCNNC_NATIVE=OFF >/dev/null
	@cmake --build $(ASAN) -j $(JOBS)
	cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 ctest --output-on-failure -j $(JOBS)

# The thread pool's tests under ThreadSanitizer (clang).
tsan:
	@CC=clang cmake -S . -B $(TSAN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCNNC_TSAN=ON -DCNNC_NATIVE=OFF >/dev/null
	@cmake --build $(TSAN) -j $(JOBS) --target test_parallel
	cd $(TSAN) && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -R '^test_parallel$$'

# cnnc under valgrind on every .net file we have, good and bad, and a compiled trainer: no
# leak, no invalid access.
valgrind: all
	@scripts/valgrind.sh $(BUILD)/cnnc

# The libFuzzer targets of tests/fuzz (clang, ASan+UBSan), each for FUZZ_SECONDS (600).
fuzz-build:
	@CC=clang cmake -S . -B $(FUZZ) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCNNC_FUZZ=ON -DCNNC_TESTS=OFF -DCNNC_NATIVE=OFF >/dev/null
	@cmake --build $(FUZZ) -j $(JOBS) --target fuzz_front fuzz_checkpoint fuzz_idx fuzz_onnx \
	  fuzz_seeds

# Then RANDOM_NETS random valid networks (tests/random_net.c) held to the reference, from
# RANDOM_SEED (make test runs 200 from seed 1 inside test_codegen).
RANDOM_NETS ?= 1000
RANDOM_SEED ?= 2
fuzz: fuzz-build
	@scripts/fuzz.sh $(FUZZ) $(FUZZ_SECONDS)
	@$(MAKE) --no-print-directory all
	cd $(BUILD)/tests && CNNC_RANDOM_NETS=$(RANDOM_NETS) CNNC_RANDOM_SEED=$(RANDOM_SEED) ./test_codegen

clean:
	rm -rf $(BUILD) $(ASAN) $(TSAN) $(FUZZ)

FORCE:
