# issue 15, deliverable 5: allocation-failure injection, after SQLite's
# out-of-memory tests (tests/oom/oom_alloc.h, docs/security.md).
#
# The oom_* programs are linked with --wrap for the allocation functions
# keyward calls (malloc, calloc, realloc, strdup: check with grep when code
# starts calling another), so every allocation of keyward's static libraries
# goes through a countdown that fails the Nth; libcrypto's too, through the
# allocator key.c installs, and libuv's through uv_replace_allocator() where
# a loop runs. No production code is built differently.
#   oom_selftest   the wrapper fails exactly the allocation asked for, and
#                  counts keyward's, libcrypto's and libuv's
#   oom_dispatch   every corpus case through agent_handle()/agent_job_run()
#                  with N = 1, 2, 3, ... failed until a run has no failure
# One case by hand: build/oom_dispatch -v --case NAME /path/to/corpus/agent
add_library(keyward_oom_alloc STATIC oom/oom_alloc.c)
target_link_libraries(keyward_oom_alloc PUBLIC PkgConfig::LIBUV)
target_include_directories(keyward_oom_alloc PUBLIC oom)
set(KEYWARD_OOM_WRAP -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc -Wl,--wrap=strdup)

add_executable(oom_selftest oom/oom_selftest.c)
target_link_libraries(oom_selftest PRIVATE keyward_oom_alloc keyward_fuzz_plain)
target_link_options(oom_selftest PRIVATE ${KEYWARD_OOM_WRAP})
add_test(NAME oom_selftest COMMAND oom_selftest)
set_tests_properties(oom_selftest PROPERTIES TIMEOUT 120)

add_executable(oom_dispatch oom/oom_dispatch.c)
target_link_libraries(oom_dispatch PRIVATE keyward_oom_alloc keyward_fuzz_plain)
target_link_options(oom_dispatch PRIVATE ${KEYWARD_OOM_WRAP})
add_test(NAME oom_dispatch COMMAND oom_dispatch ${KEYWARD_SHARED_CORPUS}/agent)
set_tests_properties(oom_dispatch PROPERTIES TIMEOUT 600)
