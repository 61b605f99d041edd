# dmaudio — diffusion models for audio, in C.  GNU make.
#
#   make                 library, the dmaudio command and the LV2 bundle, into $(BUILD)/
#   make deps            install the Debian packages that are missing (apt-get; sudo if not root)
#   make test            deps + build + run the test suite (tests/run.sh), prints "N passed, M failed"
#   make check           the same suite under AddressSanitizer + UBSan, in build-asan/
#   make test-hosts      only the LV2 plugin's tests: lilv host, jalv + JACK, Ardour (headless)
#   make bench-plugin    time the LV2 plugin's run() per block (idle and 8 voices)
#   make valgrind        $(VALGRIND_TESTS) under valgrind (definite leaks are errors)
#   make demo            deps + build + write clips (bundled model, or a tiny synthetic one)
#   make bench           speed against the machine's peak and PyTorch (bench/; BENCH_QUICK=1)
#   make install         PREFIX=/usr/local DESTDIR= LV2DIR=$(PREFIX)/lib/lv2
#   make uninstall       the same variables
#   make clean           remove build/ and build-asan/
#
# Switches: BUILD=dir (default build), NO_OMP=1 (no OpenMP), NATIVE=1 (-march=native),
# SANITIZE=1 (address,undefined; or a list such as SANITIZE=address), V=1 (show commands),
# MPI=1 (the dmaudio command trains on several processes under mpirun / srun; Open MPI).
# CFLAGS (default -O2 -g), CPPFLAGS, LDFLAGS and LDLIBS from the command line or the
# environment are added to the flags the build needs.

# Debian packages installed by `make deps`; add to this list, nothing else needs to change.
DEB_PACKAGES = build-essential pkg-config libopenblas-dev libcmocka-dev libsndfile1-dev \
               libfftw3-dev libsamplerate0-dev portaudio19-dev lv2-dev liblilv-dev \
               lilv-utils valgrind zlib1g-dev clang libclang-rt-14-dev libasound2-dev libpng-dev \
               libxml2-dev jalv jackd2 ardour libopenmpi-dev openmpi-bin parallel

# pkg-config modules.  LIB_PKGS are linked into libdmaudio and everything built on it.
BLAS_PKGS   = openblas
AUDIO_PKGS  = sndfile fftw3f samplerate portaudio-2.0 alsa
LIB_PKGS    = $(BLAS_PKGS) $(AUDIO_PKGS) zlib libpng
PLUGIN_PKGS = lv2
TOOL_PKGS   = libxml-2.0
HOST_PKGS   = lilv-0
TEST_PKGS   = cmocka
MPI_PKGS    = mpi-c

VERSION   = 0.1.0
SOVERSION = 0

CC         ?= cc
AR         ?= ar
PKG_CONFIG ?= pkg-config
CFLAGS     ?= -O2 -g

BUILD ?= build

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DATADIR    ?= $(PREFIX)/share
LV2DIR     ?= $(PREFIX)/lib/lv2

LIB_EXT = .so

VALGRIND       ?= valgrind
VALGRIND_FLAGS ?= --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite -q
VALGRIND_TESTS ?= test_unet

# ---------------------------------------------------------------------------------------------
# flags

# pkg-config is asked once per make run, quietly: on a bare machine `make deps` must parse
# before pkg-config exists.  A missing module stops the build that needs it, with a message.
pc_missing = $(foreach p,$(1),$(if $(shell $(PKG_CONFIG) --exists $(p) 2>/dev/null && echo y),,$(p)))
MISSING_LIB    := $(call pc_missing,$(LIB_PKGS))
MISSING_PLUGIN := $(call pc_missing,$(PLUGIN_PKGS))
MISSING_TEST   := $(call pc_missing,$(TEST_PKGS))
MISSING_TOOL   := $(call pc_missing,$(TOOL_PKGS))
MISSING_HOST   := $(call pc_missing,$(HOST_PKGS))
MISSING_MPI    := $(call pc_missing,$(MPI_PKGS))
LIB_PC_CFLAGS    := $(shell $(PKG_CONFIG) --cflags $(LIB_PKGS) 2>/dev/null)
LIB_PC_LIBS      := $(shell $(PKG_CONFIG) --libs $(LIB_PKGS) 2>/dev/null)
PLUGIN_PC_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PLUGIN_PKGS) 2>/dev/null)
TEST_PC_CFLAGS   := $(shell $(PKG_CONFIG) --cflags $(TEST_PKGS) 2>/dev/null)
TEST_PC_LIBS     := $(shell $(PKG_CONFIG) --libs $(TEST_PKGS) 2>/dev/null)
TOOL_PC_CFLAGS   := $(shell $(PKG_CONFIG) --cflags $(TOOL_PKGS) 2>/dev/null)
TOOL_PC_LIBS     := $(shell $(PKG_CONFIG) --libs $(TOOL_PKGS) 2>/dev/null)
HOST_PC_CFLAGS   := $(shell $(PKG_CONFIG) --cflags $(HOST_PKGS) 2>/dev/null)
HOST_PC_LIBS     := $(shell $(PKG_CONFIG) --libs $(HOST_PKGS) 2>/dev/null)
MPI_PC_CFLAGS    := $(shell $(PKG_CONFIG) --cflags $(MPI_PKGS) 2>/dev/null)
MPI_PC_LIBS      := $(shell $(PKG_CONFIG) --libs $(MPI_PKGS) 2>/dev/null)
need_pkgs = $(if $(strip $(1)),$(error missing pkg-config modules: $(strip $(1)) -- run `make deps`))

ifeq ($(NO_OMP),1)
  OMP_FLAGS =
  OMP_WARN  = -Wno-unknown-pragmas
  OMP_PC    =
else
  OMP_FLAGS = -fopenmp
  OMP_WARN  =
  OMP_PC    = -fopenmp
endif

ifeq ($(NATIVE),1)
  ARCH_FLAGS = -march=native
endif

comma := ,
ifneq ($(filter-out 0,$(SANITIZE)),)
  SAN_LIST  = $(if $(filter 1,$(SANITIZE)),address$(comma)undefined,$(SANITIZE))
  SAN_FLAGS = -fsanitize=$(SAN_LIST) -fno-omit-frame-pointer -fno-sanitize-recover=all
  NO_UNDEF  =
else
  NO_UNDEF  = -Wl,--no-undefined
endif

ALL_CPPFLAGS = -D_GNU_SOURCE -Icore/include -Icore/src $(LIB_PC_CFLAGS) $(CPPFLAGS)
# -fno-math-errno and -fno-trapping-math change no computed value (nothing reads errno after
# a math call or the floating-point exception flags); they let loops with sqrt or a select
# vectorise (the AdamW step).
ALL_CFLAGS   = -std=c11 -fno-math-errno -fno-trapping-math -Wall -Wextra -fPIC $(OMP_FLAGS) \
               $(OMP_WARN) $(ARCH_FLAGS) $(SAN_FLAGS) $(CFLAGS)
DEP_FLAGS    = -MMD -MP
ALL_LDFLAGS  = $(OMP_FLAGS) $(SAN_FLAGS) -Wl,--as-needed $(LDFLAGS)
ALL_LDLIBS   = $(LIB_PC_LIBS) -lm $(LDLIBS)

ifeq ($(V),1)
  Q =
  say =
else
  Q = @
  say = @printf '  %-6s %s\n' $(1) $(2);
endif

# ---------------------------------------------------------------------------------------------
# what gets built

OBJ = $(BUILD)/obj

CORE_SRCS   := $(sort $(wildcard core/src/*.c))
CLI_SRCS    := $(sort $(wildcard cli/*.c))
PLUGIN_SRCS := $(sort $(wildcard plugin/*.c))
TEST_SRCS   := $(sort $(wildcard tests/test_*.c))
FIXTURE_SRC := $(wildcard tests/fixture.c)
HEADERS     := $(sort $(wildcard core/include/*.h))
MODELS      := $(sort $(wildcard models/*.dmm))

CORE_OBJS    = $(CORE_SRCS:%.c=$(OBJ)/%.o)
CLI_OBJS     = $(CLI_SRCS:%.c=$(OBJ)/%.o)
PLUGIN_OBJS  = $(PLUGIN_SRCS:%.c=$(OBJ)/%.o)
TEST_OBJS    = $(TEST_SRCS:%.c=$(OBJ)/%.o)
FIXTURE_OBJ  = $(FIXTURE_SRC:%.c=$(OBJ)/%.o)
ALL_OBJS     = $(CORE_OBJS) $(CLI_OBJS) $(PLUGIN_OBJS) $(TEST_OBJS) $(FIXTURE_OBJ)

LIB_A       = $(BUILD)/libdmaudio.a
LIB_SO      = $(BUILD)/libdmaudio.so.$(SOVERSION)
LIB_SO_LINK = $(BUILD)/libdmaudio.so
BIN         = $(BUILD)/dmaudio
BUNDLE      = $(BUILD)/lv2/dmaudio.lv2
BUNDLE_SO   = $(BUNDLE)/dmaudio$(LIB_EXT)
BUNDLE_TTL  = $(BUNDLE)/manifest.ttl $(BUNDLE)/dmaudio.ttl
PRESETS    := $(sort $(wildcard presets/*.ttl))
BUNDLE_PRESETS = $(PRESETS:%=$(BUNDLE)/%)
# The bundle links the bundled default model when there is one (the plugin otherwise looks
# in $(DATADIR)/dmaudio/models).
BUNDLE_MODEL = $(if $(wildcard models/default.dmm),$(BUNDLE)/default.dmm)
TEST_BINS   = $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
TOOL_SRCS  := $(sort $(wildcard tools/*.c))
TOOL_BINS   = $(TOOL_SRCS:tools/%.c=$(BUILD)/tools/%)

# Records the compile and link lines, so that changing a switch (NO_OMP, SANITIZE, CFLAGS...)
# rebuilds everything; rewritten only when it changes.
FLAGS_STAMP = $(BUILD)/.flags
FLAGS_LINE  = $(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) | $(ALL_LDFLAGS) $(ALL_LDLIBS) | $(DATADIR) \
              | MPI=$(MPI)

.PHONY: all lib bin plugin tests tools test test-nodeps test-hosts check valgrind deps demo \
        install uninstall clean FORCE

all: lib bin plugin tools

lib: $(LIB_A) $(LIB_SO) $(LIB_SO_LINK)
bin: $(BIN)
plugin: $(BUNDLE_SO) $(BUNDLE_TTL) $(BUNDLE_PRESETS) $(BUNDLE_MODEL)
tests: $(TEST_BINS)
tools: $(TOOL_BINS)

# ---------------------------------------------------------------------------------------------
# compile and link

$(FLAGS_STAMP): FORCE
	@mkdir -p $(@D)
	@printf '%s\n' '$(FLAGS_LINE)' | cmp -s - $@ || printf '%s\n' '$(FLAGS_LINE)' > $@

# The command looks for the installed default model in $(DATADIR)/dmaudio/models.
$(CLI_OBJS): OBJ_CPPFLAGS = -DDM_DATADIR='"$(DATADIR)/dmaudio"'

# The layers' element-wise loops (exp in SiLU, softmax, fused GroupNorm) vectorise only when
# the compiler may assume comparisons do not trap; results are the same IEEE operations.
$(OBJ)/core/src/layers.o: OBJ_CFLAGS = -fno-trapping-math

$(CORE_OBJS) $(CLI_OBJS): $(OBJ)/%.o: %.c $(FLAGS_STAMP)
	$(call need_pkgs,$(MISSING_LIB))
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(OBJ_CPPFLAGS) $(ALL_CFLAGS) $(OBJ_CFLAGS) $(DEP_FLAGS) -c $< -o $@

# The plugin exports lv2_descriptor only (LV2_SYMBOL_EXPORT); everything else is hidden.
# It looks for the installed default model in $(DATADIR)/dmaudio/models.
$(PLUGIN_OBJS): $(OBJ)/%.o: %.c $(FLAGS_STAMP)
	$(call need_pkgs,$(MISSING_LIB) $(MISSING_PLUGIN))
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(ALL_CPPFLAGS) -DDM_DATADIR='"$(DATADIR)/dmaudio"' $(PLUGIN_PC_CFLAGS) \
		$(ALL_CFLAGS) -fvisibility=hidden $(DEP_FLAGS) -c $< -o $@

# The plugin's host test (a lilv host) also needs lilv.
$(OBJ)/tests/test_plugin.o: OBJ_CPPFLAGS = $(HOST_PC_CFLAGS)
$(OBJ)/tests/test_plugin.o: NEED_HOST = $(MISSING_HOST)
$(BUILD)/tests/test_plugin: OBJ_LIBS = $(HOST_PC_LIBS)

$(TEST_OBJS) $(FIXTURE_OBJ): $(OBJ)/%.o: %.c $(FLAGS_STAMP)
	$(call need_pkgs,$(MISSING_LIB) $(MISSING_TEST) $(NEED_HOST))
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(ALL_CPPFLAGS) -Itests $(TEST_PC_CFLAGS) $(OBJ_CPPFLAGS) $(ALL_CFLAGS) $(DEP_FLAGS) \
		-c $< -o $@

$(LIB_A): $(CORE_OBJS)
	@mkdir -p $(@D)
	$(call say,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(LIB_SO): $(CORE_OBJS)
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) $(NO_UNDEF) -shared -Wl,-soname,$(notdir $@) -o $@ $^ $(ALL_LDLIBS)

$(LIB_SO_LINK): $(LIB_SO)
	$(Q)ln -sf $(notdir $<) $@

# MPI: cli/mpi.c compiled with DM_MPI into mpi-on.o replaces mpi.o (the one-process version).
# MPI=1 links the dmaudio command with it; otherwise, when MPI is installed, `make tests` links
# $(BUILD)/tests/dmaudio-mpi, an MPI-enabled command for tests/test_mpi.sh only.
MPI_OBJ      = $(OBJ)/cli/mpi-on.o
MPI_CLI_OBJS = $(filter-out $(OBJ)/cli/mpi.o,$(CLI_OBJS)) $(MPI_OBJ)
MPI_TEST_BIN = $(if $(MISSING_MPI),,$(BUILD)/tests/dmaudio-mpi)
tests: $(MPI_TEST_BIN)

$(MPI_OBJ): cli/mpi.c $(FLAGS_STAMP)
	$(call need_pkgs,$(MISSING_LIB) $(MISSING_MPI))
	@mkdir -p $(@D)
	$(call say,CC,$@)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(MPI_PC_CFLAGS) -DDM_MPI $(ALL_CFLAGS) $(DEP_FLAGS) -c $< -o $@

ifeq ($(MPI),1)
$(BIN): $(MPI_CLI_OBJS) $(LIB_A)
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(MPI_CLI_OBJS) $(LIB_A) $(ALL_LDLIBS) $(MPI_PC_LIBS)
else
$(BIN): $(CLI_OBJS) $(LIB_A)
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(CLI_OBJS) $(LIB_A) $(ALL_LDLIBS)
endif

$(BUILD)/tests/dmaudio-mpi: $(MPI_CLI_OBJS) $(LIB_A)
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(MPI_CLI_OBJS) $(LIB_A) $(ALL_LDLIBS) $(MPI_PC_LIBS)

# --exclude-libs keeps libdmaudio's symbols out of the plugin's dynamic table, so two plugins
# (or a host that links another libdmaudio) never resolve each other's functions.
$(BUNDLE_SO): $(PLUGIN_OBJS) $(LIB_A)
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) $(NO_UNDEF) -shared -Wl,--exclude-libs,ALL -o $@ \
		$(PLUGIN_OBJS) $(LIB_A) $(ALL_LDLIBS)

$(BUNDLE)/%.ttl: plugin/%.ttl.in
	@mkdir -p $(@D)
	$(call say,GEN,$@)
	$(Q)sed -e 's/@LIB_EXT@/$(LIB_EXT)/g' $< > $@.tmp && mv $@.tmp $@

$(BUNDLE)/presets/%.ttl: presets/%.ttl
	@mkdir -p $(@D)
	$(Q)cp $< $@

$(BUNDLE)/default.dmm: models/default.dmm
	@mkdir -p $(@D)
	$(Q)ln -sf $(abspath $<) $@

$(TEST_BINS): $(BUILD)/tests/%: $(OBJ)/tests/%.o $(FIXTURE_OBJ) $(LIB_A)
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(FIXTURE_OBJ) $(LIB_A) $(OBJ_LIBS) $(TEST_PC_LIBS) \
		$(ALL_LDLIBS)

# tools/NAME.c: the project's own programs (tools/drumkits builds the default model's data set)
$(TOOL_BINS): $(BUILD)/tools/%: tools/%.c $(LIB_A) $(HEADERS) $(FLAGS_STAMP)
	$(call need_pkgs,$(MISSING_LIB) $(MISSING_TOOL))
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(TOOL_PC_CFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB_A) \
		$(TOOL_PC_LIBS) $(ALL_LDLIBS)

-include $(ALL_OBJS:.o=.d) $(MPI_OBJ:.o=.d)

# ---------------------------------------------------------------------------------------------
# examples: each examples/NAME.c is a user's program, built into $(BUILD)/examples/NAME against
# the public header and the static library only (installed: pkg-config --cflags --libs dmaudio).
# tests/test_examples.sh runs them, and the example scripts, in `make test`.

EXAMPLE_SRCS := $(sort $(wildcard examples/*.c))
EXAMPLE_BINS  = $(EXAMPLE_SRCS:examples/%.c=$(BUILD)/examples/%)

.PHONY: examples
examples: $(EXAMPLE_BINS)

$(EXAMPLE_BINS): $(BUILD)/examples/%: examples/%.c $(LIB_A) $(HEADERS) $(FLAGS_STAMP)
	$(call need_pkgs,$(MISSING_LIB))
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) -Icore/include $(LIB_PC_CFLAGS) $(CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< \
		$(LIB_A) $(ALL_LDLIBS)

# ---------------------------------------------------------------------------------------------
# bench-plugin: times the LV2 plugin's run() per block through lilv (bench/bench_plugin.c),
# idle and with 8 voices sounding, blocks of 64, 256 and 1024 frames at 48 kHz. Uses
# models/default.dmm when it exists (else a tiny model it makes). BENCH_PLUGIN_ARGS adds
# options: -m MODEL, -r RATE, -s SECONDS (of audio per case, 10).
BENCH_PLUGIN = $(BUILD)/bench/bench_plugin

.PHONY: bench-plugin
bench-plugin: plugin $(BENCH_PLUGIN)
	DMAUDIO_BUILD_DIR=$(BUILD) OMP_WAIT_POLICY=passive $(BENCH_PLUGIN) $(BENCH_PLUGIN_ARGS)

$(BENCH_PLUGIN): bench/bench_plugin.c tests/lv2host.h $(LIB_A) $(HEADERS) $(FLAGS_STAMP)
	$(call need_pkgs,$(MISSING_LIB) $(MISSING_HOST))
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(ALL_CPPFLAGS) -Itests $(HOST_PC_CFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< \
		$(LIB_A) $(HOST_PC_LIBS) $(ALL_LDLIBS)

# ---------------------------------------------------------------------------------------------
# tests

# deps first, then a fresh make: its pkg-config answers see what deps just installed.
test: deps
	@$(MAKE) --no-print-directory test-nodeps

test-nodeps: all tests examples
	bash tests/run.sh $(BUILD)

# The plugin's tests alone: the lilv host test, then jalv under JACK and Ardour 7 (both in
# tests/hosts/, also part of `make test`; about 40 s together).
test-hosts: deps
	@$(MAKE) --no-print-directory all $(BUILD)/tests/test_plugin
	@set -e; export DMAUDIO=$(BUILD)/dmaudio DMAUDIO_BUILD_DIR=$(BUILD) CMOCKA_MESSAGE_OUTPUT=TAP; \
	$(BUILD)/tests/test_plugin; \
	for t in tests/hosts/test_*.sh; do echo "# ---- $$t"; bash $$t; done

# If LeakSanitizer ever reports libgomp/OpenBLAS internals, list them (and only them) in
# tests/lsan.supp; it is used when it exists.  None is needed so far.
LSAN_SUPP = $(wildcard $(CURDIR)/tests/lsan.supp)

check: deps
	@ASAN_OPTIONS=detect_leaks=1 \
	 $(if $(LSAN_SUPP),LSAN_OPTIONS=suppressions=$(LSAN_SUPP):print_suppressions=0) \
	 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	 $(MAKE) --no-print-directory BUILD=build-asan SANITIZE=1 test-nodeps

valgrind: deps
	@$(MAKE) --no-print-directory all $(VALGRIND_TESTS:%=$(BUILD)/tests/%)
	@set -e; for t in $(VALGRIND_TESTS); do \
	  echo "OMP_NUM_THREADS=2 $(VALGRIND) $(VALGRIND_FLAGS) $(BUILD)/tests/$$t"; \
	  OMP_NUM_THREADS=2 $(VALGRIND) $(VALGRIND_FLAGS) $(BUILD)/tests/$$t; \
	done

# $(call install_missing,PACKAGES,WHO): installs those of PACKAGES that dpkg does not list as
# installed (apt-get update first; sudo when not root); quick and silent when none is missing.
define install_missing
	@if ! command -v dpkg-query >/dev/null 2>&1; then \
	  echo "make $(2): no dpkg-query (not Debian?); install by hand: $(1)"; exit 0; \
	fi; \
	have=$$(dpkg-query -W -f='$${Package} $${Status}\n' $(1) 2>/dev/null \
	        | awk '$$NF == "installed" && $$(NF-1) == "ok" { print $$1 }'); \
	missing=; \
	for p in $(1); do \
	  case " $$(echo $$have) " in *" $$p "*) ;; *) missing="$$missing $$p";; esac; \
	done; \
	[ -z "$$missing" ] && exit 0; \
	echo "make $(2): installing:$$missing"; \
	if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	$$sudo apt-get update && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing
endef

deps:
	$(call install_missing,$(DEB_PACKAGES),deps)

# ---------------------------------------------------------------------------------------------
# fuzzing (clang + libFuzzer; `make deps` installs both)
#
# Each tests/fuzz/fuzz_NAME.c is a libFuzzer target, built with the library's sources into
# $(BUILD)/fuzz/fuzz_NAME under ASan + UBSan. Its seed corpus is tests/fuzz/corpus/NAME/ and
# its dictionary tests/fuzz/NAME.dict when there is one.
#   make fuzz          runs each target for FUZZ_TIME seconds (default 600) over a copy of its
#                      corpus ($(BUILD)/fuzz/NAME.corpus/); crashes land in $(BUILD)/fuzz/NAME.findings/
#                      (copy a crash into the corpus once fixed: it becomes a regression test).
#                      FUZZ_ARGS adds libFuzzer options, e.g. FUZZ_ARGS=-jobs=4. An input that
#                      runs longer than FUZZ_UNIT_TIME seconds (30) is a finding too (a hang).
#                      LeakSanitizer uses tests/fuzz/lsan.supp (leaks inside codec libraries).
#                      FUZZ_ONLY=NAME... runs only those targets (e.g. FUZZ_ONLY="audio recipe").
#   make fuzz-replay   runs every corpus file through its target once; `make test` does the same
#                      through tests/test_fuzz_replay.sh.
FUZZ_CC    ?= clang
FUZZ_TIME  ?= 600
FUZZ_UNIT_TIME ?= 30
FUZZ_FLAGS ?= -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_ENV   = LSAN_OPTIONS=suppressions=$(CURDIR)/tests/fuzz/lsan.supp:print_suppressions=0
FUZZ_SRCS  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS   = $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
# the parts of the command a target may call (the recipe parser), built into every target;
# fuzz_plugin_state also builds the plugin's sources
FUZZ_CLI_SRCS = cli/recipe.c
FUZZ_EXTRA_fuzz_plugin_state = $(PLUGIN_SRCS) $(PLUGIN_PC_CFLAGS) -DDM_DATADIR='"/nonexistent"'

.PHONY: fuzz fuzz-bins fuzz-replay
fuzz-bins: $(FUZZ_BINS)

$(FUZZ_BINS): $(BUILD)/fuzz/%: tests/fuzz/%.c $(CORE_SRCS) $(wildcard core/src/*.h) $(HEADERS) \
              $(FUZZ_CLI_SRCS) cli/cli.h $(PLUGIN_SRCS)
	$(call need_pkgs,$(MISSING_LIB) $(MISSING_PLUGIN))
	@mkdir -p $(@D)
	$(call say,FUZZ,$@)
	$(Q)$(FUZZ_CC) -std=c11 -Wall -Wextra -Wno-unknown-pragmas $(FUZZ_FLAGS) $(ALL_CPPFLAGS) -Icli \
		-o $@ $< $(CORE_SRCS) $(FUZZ_CLI_SRCS) $(FUZZ_EXTRA_$(notdir $@)) $(LIB_PC_LIBS) -lm

FUZZ_RUN = $(if $(FUZZ_ONLY),$(FUZZ_ONLY:%=$(BUILD)/fuzz/fuzz_%),$(FUZZ_BINS))
fuzz: $(FUZZ_RUN)
	@set -e; for bin in $(FUZZ_RUN); do \
	  name=$${bin##*/fuzz_}; work=$(BUILD)/fuzz/$$name.corpus; found=$(BUILD)/fuzz/$$name.findings; \
	  rm -rf $$work; mkdir -p $$work $$found; \
	  if [ -d tests/fuzz/corpus/$$name ]; then cp tests/fuzz/corpus/$$name/* $$work/; fi; \
	  dict=; if [ -f tests/fuzz/$$name.dict ]; then dict=-dict=tests/fuzz/$$name.dict; fi; \
	  echo "fuzz_$$name: $(FUZZ_TIME)s over $$work, findings in $$found/"; \
	  $(FUZZ_ENV) $$bin $$dict -max_total_time=$(FUZZ_TIME) -timeout=$(FUZZ_UNIT_TIME) \
	    -print_final_stats=1 -artifact_prefix=$$found/ $(FUZZ_ARGS) $$work; \
	done

fuzz-replay: $(FUZZ_BINS)
	@set -e; for bin in $(FUZZ_BINS); do \
	  name=$${bin##*/fuzz_}; \
	  set -- tests/fuzz/corpus/$$name/*; [ -e "$$1" ] || { echo "fuzz_$$name: no corpus"; exit 1; }; \
	  echo "fuzz_$$name: replaying $$# corpus files"; \
	  $(FUZZ_ENV) $$bin "$$@" 2>$(BUILD)/fuzz/$$name.replay.log || { tail -40 $(BUILD)/fuzz/$$name.replay.log; exit 1; }; \
	done; echo "fuzz-replay: all corpus files pass"

# ---------------------------------------------------------------------------------------------
# demo — the first thing a newcomer runs: installs what is missing, builds, and writes clips.
# With the bundled model (models/default.dmm) it samples one clip per class. Until that model
# exists (it is trained by `make model`), it shows the whole pipeline on the synthetic dataset
# instead: writes the tone/noise/click set (8 kHz, 1024-sample clips), trains a tiny model for
# about a minute, then
# samples a clip and draws a spectrogram per class. Everything goes to $(BUILD)/demo/.
DEMO_DIR ?= $(BUILD)/demo
DEMO_STEPS ?= 400
demo: deps
	@$(MAKE) --no-print-directory all
	@set -e; mkdir -p $(DEMO_DIR); dm=$(BUILD)/dmaudio; export OMP_WAIT_POLICY=passive; \
	if [ -f models/default.dmm ]; then \
	  model=models/default.dmm; \
	else \
	  echo "demo: no bundled model yet: training a tiny one on the synthetic dataset"; \
	  $$dm synth $(DEMO_DIR)/data --per-class 48 --rate 8000 --length 1024 --seed 1 --force; \
	  $$dm train $(DEMO_DIR)/data -o $(DEMO_DIR)/synth.dmm --preset tiny --steps $(DEMO_STEPS) \
	    --batch 16 --seed 1 --force; \
	  model=$(DEMO_DIR)/synth.dmm; \
	fi; \
	classes=$$($$dm info $$model --json | sed -n 's/.*"classes": *\[\([^]]*\)\].*/\1/p' | tr -d '" ' | tr ',' ' '); \
	for c in $$classes; do \
	  $$dm sample -m $$model --class $$c --seed 1 -o $(DEMO_DIR)/$$c.wav --force --quiet; \
	  $$dm spectrogram $(DEMO_DIR)/$$c.wav -o $(DEMO_DIR)/$$c.png --force; \
	  echo "demo: wrote $(DEMO_DIR)/$$c.wav and $(DEMO_DIR)/$$c.png"; \
	done; \
	$$dm sample -m $$model --seed 7 -o $(DEMO_DIR)/clip.wav --force --quiet; \
	echo "demo: wrote $(DEMO_DIR)/clip.wav (unconditional); play with: $$dm play $(DEMO_DIR)/clip.wav"

# ---------------------------------------------------------------------------------------------
# the bundled default model: its data set and its training (docs: models/README.md)
#
#   make dataset   installs Debian's hydrogen-drumkits and hydrogen-data (real drum kits), then
#                  tools/drumkits writes $(DRUMS_DIR)/train/CLASS/, valid/CLASS/, manifest.csv and
#                  SUMMARY.txt from the kits of recipes/drums/kits.tsv (licences and split there).
#                  Into $(DRUMS_DIR).part first, renamed when complete; skipped when it exists.
#   make model     trains $(MODEL_OUT) from $(DRUMS_DIR)/train with the options of
#                  recipes/drums/train.flags (fixed seed): resumes from $(MODEL_OUT).ckpt when a
#                  run was interrupted; then evaluates it against the validation kits
#                  ($(MODEL_OUT:.dmm=.eval.json)).
DATASET_PACKAGES = hydrogen-drumkits hydrogen-data
DRUMS_DIR ?= data/drums
MODEL_OUT ?= models/default.dmm

.PHONY: dataset model
dataset: deps
	$(call install_missing,$(DATASET_PACKAGES),dataset)
	@$(MAKE) --no-print-directory $(BUILD)/tools/drumkits
	@set -e; if [ -f $(DRUMS_DIR)/SUMMARY.txt ]; then \
	  echo "dataset: $(DRUMS_DIR) exists (remove it to rebuild)"; exit 0; fi; \
	mkdir -p $(dir $(DRUMS_DIR)); rm -rf $(DRUMS_DIR).part; \
	$(BUILD)/tools/drumkits -o $(DRUMS_DIR).part; \
	mv $(DRUMS_DIR).part $(DRUMS_DIR); echo "dataset: wrote $(DRUMS_DIR)"

model: dataset
	@$(MAKE) --no-print-directory all
	@set -e; flags=$$(sed -e 's/#.*//' recipes/drums/train.flags); \
	if [ -f $(MODEL_OUT).ckpt ]; then resume=--resume; \
	  echo "model: resuming from $(MODEL_OUT).ckpt"; else resume=--force; fi; \
	OMP_WAIT_POLICY=passive $(BUILD)/dmaudio train $(DRUMS_DIR)/train -o $(MODEL_OUT) $$flags $$resume; \
	rm -f $(MODEL_OUT).ckpt; \
	echo "model: wrote $(MODEL_OUT); evaluating against $(DRUMS_DIR)/valid"; \
	OMP_WAIT_POLICY=passive sh recipes/drums/evaluate.sh $(BUILD)/dmaudio $(MODEL_OUT) $(DRUMS_DIR) \
	  $(MODEL_OUT:.dmm=.eval)

# ---------------------------------------------------------------------------------------------
# bench — speed, not correctness: never part of `make test`. bench/bench.c measures the peak
# FMA rate, the GEMM backend and every layer on the model's shapes, whole passes, sampling,
# training and peak memory; bench/torch_bench.py runs the same network in PyTorch (Debian's
# python3-torch, not in DEB_PACKAGES: the bench skips it when missing). Table on stdout,
# $(BUILD)/bench.json. BENCH_QUICK=1 is a smoke test; see bench/bench.c for the other knobs.
BENCH_BIN = $(BUILD)/bench/bench
PYTHON ?= /usr/bin/python3

$(BENCH_BIN): bench/bench.c $(LIB_A) $(HEADERS) $(wildcard core/src/*.h) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB_A) $(ALL_LDLIBS)

.PHONY: bench
bench: all $(BENCH_BIN)
	BENCH_DIR=$(BUILD)/bench BENCH_JSON=$(BUILD)/bench.json DMAUDIO=$(BIN) PYTHON=$(PYTHON) \
	  $(BENCH_BIN)
	@$(MAKE) --no-print-directory bench-plugin

# ---------------------------------------------------------------------------------------------
# install

D_BIN     = $(DESTDIR)$(BINDIR)
D_LIB     = $(DESTDIR)$(LIBDIR)
D_INCLUDE = $(DESTDIR)$(INCLUDEDIR)
D_MODELS  = $(DESTDIR)$(DATADIR)/dmaudio/models
D_BUNDLE  = $(DESTDIR)$(LV2DIR)/dmaudio.lv2

install: all
	install -d $(D_BIN) $(D_LIB) $(D_LIB)/pkgconfig $(D_INCLUDE) $(D_BUNDLE)
	install -m 755 $(BIN) $(D_BIN)/dmaudio
	install -m 644 $(LIB_A) $(D_LIB)/
	install -m 755 $(LIB_SO) $(D_LIB)/
	ln -sf $(notdir $(LIB_SO)) $(D_LIB)/$(notdir $(LIB_SO_LINK))
	install -m 644 $(HEADERS) $(D_INCLUDE)/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@DATADIR@|$(DATADIR)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' -e 's|@REQUIRES_PRIVATE@|$(LIB_PKGS)|g' \
	    -e 's|@LIBS_PRIVATE@|$(strip $(OMP_PC) -lm)|g' \
	    dmaudio.pc.in > $(D_LIB)/pkgconfig/dmaudio.pc
	chmod 644 $(D_LIB)/pkgconfig/dmaudio.pc
ifneq ($(MODELS),)
	install -d $(D_MODELS)
	install -m 644 $(MODELS) $(D_MODELS)/
endif
	install -m 755 $(BUNDLE_SO) $(D_BUNDLE)/
	install -m 644 $(BUNDLE)/*.ttl $(D_BUNDLE)/
	install -d $(D_BUNDLE)/presets
	install -m 644 $(PRESETS) $(D_BUNDLE)/presets/
ifneq ($(MODELS),)
	ln -sf $(DATADIR)/dmaudio/models/default.dmm $(D_BUNDLE)/default.dmm
endif

uninstall:
	rm -f $(D_BIN)/dmaudio
	rm -f $(D_LIB)/$(notdir $(LIB_A)) $(D_LIB)/$(notdir $(LIB_SO)) $(D_LIB)/$(notdir $(LIB_SO_LINK))
	rm -f $(D_LIB)/pkgconfig/dmaudio.pc
	rm -f $(addprefix $(D_INCLUDE)/,$(notdir $(HEADERS)))
	rm -f $(addprefix $(D_MODELS)/,$(notdir $(MODELS)))
	rmdir $(D_MODELS) $(DESTDIR)$(DATADIR)/dmaudio 2>/dev/null || true
	rm -rf $(D_BUNDLE)

# ---------------------------------------------------------------------------------------------

clean:
	rm -rf build build-asan $(BUILD)

FORCE:
