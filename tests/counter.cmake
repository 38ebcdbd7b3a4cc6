# percpu_counter and percpu_ref: tests/test_counter.c, tests/test_ref.c.
#
# Each runs in the default mode (rseq where the machine has it), with
# glibc's rseq turned off by its tunable, and with atomics requested; each
# run asserts percpu_mode_name() so a silent fallback cannot pass as rseq.
# The expected modes come from tests/common.cmake.
foreach(t test_counter test_ref)
  percpu_test(${t} SOURCES ${t}.c TIMEOUT 300 ENV PERCPU_EXPECT_MODE=${PERCPU_EXPECT_RSEQ})
  foreach(variant
      "tunable|GLIBC_TUNABLES=glibc.pthread.rseq=0;PERCPU_EXPECT_MODE=${PERCPU_EXPECT_ATOMIC}"
      "atomic|PERCPU_FASTPATH=atomic;PERCPU_EXPECT_MODE=${PERCPU_EXPECT_ATOMIC}")
    string(REPLACE "|" ";" parts "${variant}")
    list(GET parts 0 suffix)
    list(REMOVE_AT parts 0)
    add_test(NAME ${t}_${suffix} COMMAND ${t})
    set_tests_properties(${t}_${suffix} PROPERTIES ENVIRONMENT "${parts}" TIMEOUT 300)
  endforeach()
  # Stress: 10x the counter work, 5x the kill rounds (1000), rseq and atomic.
  add_test(NAME ${t}_stress COMMAND ${t} stress)
  set_tests_properties(${t}_stress PROPERTIES
    ENVIRONMENT "PERCPU_EXPECT_MODE=${PERCPU_EXPECT_RSEQ}" TIMEOUT 900 LABELS stress)
  add_test(NAME ${t}_stress_atomic COMMAND ${t} stress)
  set_tests_properties(${t}_stress_atomic PROPERTIES
    ENVIRONMENT "PERCPU_FASTPATH=atomic;PERCPU_EXPECT_MODE=${PERCPU_EXPECT_ATOMIC}" TIMEOUT 900
    LABELS stress)
endforeach()

# The error bound inside a fold, both steps stopped by a test hook (needs
# 2 CPUs; skips otherwise), in the default mode and with atomics.
percpu_test(test_counter_window SOURCES test_counter_window.c INTERNAL
  ENV PERCPU_EXPECT_MODE=${PERCPU_EXPECT_RSEQ})
set_tests_properties(test_counter_window PROPERTIES SKIP_RETURN_CODE 77)
add_test(NAME test_counter_window_atomic COMMAND test_counter_window)
set_tests_properties(test_counter_window_atomic PROPERTIES
  ENVIRONMENT "PERCPU_FASTPATH=atomic" SKIP_RETURN_CODE 77 TIMEOUT 120)
