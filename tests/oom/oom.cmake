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
#                  counts keyward's, libcrypto's and libuv's; known requests
#                  (ADD, SIGN, LIST, REMOVE, REMOVE_ALL, LOCK, UNLOCK) each
#                  with every allocation failed: a failure changes nothing
#   oom_dispatch   every corpus case through agent_handle()/agent_job_run()
#                  with N = 1, 2, 3, ... failed until a run has no failure
#   oom_server     a sample of requests over real connections to an
#                  in-process server, another client connected throughout
# One case by hand: build/tests/oom_dispatch -v --case NAME CORPUS/agent
# A sample under valgrind by hand (every 100th case and the two synthetic
# ones: 13 min, clean on 2026-12-06): valgrind ... oom_dispatch --every 100
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

add_executable(oom_server oom/oom_server.c)
target_link_libraries(oom_server PRIVATE keyward_oom_alloc keyward_fuzz_plain keyward_server
                                         keyward_fixture_sock)
target_link_options(oom_server PRIVATE ${KEYWARD_OOM_WRAP})
add_test(NAME oom_server COMMAND oom_server -v)
set_tests_properties(oom_server PROPERTIES TIMEOUT 600)

# Under the sanitizers as every other test (tests/CMakeLists.txt), except that
# the two single-threaded programs unwind malloc's stack the fast way: the
# slow one, there for lsan.supp to match frames inside libcrypto (worker
# threads' random generators), made oom_dispatch's millions of allocations
# take over ten minutes.
if(KEYWARD_SANITIZE)
  set(KEYWARD_OOM_SAN_ENV
      "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
      "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/lsan.supp:print_suppressions=0")
  set_tests_properties(oom_selftest oom_dispatch PROPERTIES ENVIRONMENT
                       "ASAN_OPTIONS=detect_leaks=1;${KEYWARD_OOM_SAN_ENV}")
  set_tests_properties(oom_server PROPERTIES ENVIRONMENT
                       "ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0;${KEYWARD_OOM_SAN_ENV}")
endif()

# The server sample under valgrind's memcheck too (no LOCK/UNLOCK: each
# scrypt takes seconds there), as the unit tests are (valgrind_unit_*): an
# invalid access or a definite or indirect leak on any failure path fails it.
if(NOT KEYWARD_SANITIZE)
  keyward_add_memcheck_test(valgrind_oom_server $<TARGET_FILE:oom_server> --no-lock)
  set_tests_properties(valgrind_oom_server PROPERTIES TIMEOUT 600)
endif()
