# this_cpu operations: tests/test_ops.c, test_migration.c, test_ops_mixed.c,
# test_pcpu_stack.c and the compile-time size check.
#
# The expected modes come from tests/common.cmake.
set(PCPU_RSEQ_EXPECT ${PERCPU_EXPECT_RSEQ})

percpu_test(test_ops SOURCES test_ops.c STATIC)
add_test(NAME test_ops_atomic COMMAND test_ops)
set_tests_properties(test_ops_atomic PROPERTIES ENVIRONMENT "PERCPU_FASTPATH=atomic" TIMEOUT 120)
# No rseq at all: the pinned thread's CPU comes from the vDSO's getcpu.
add_test(NAME test_ops_tunable COMMAND test_ops)
set_tests_properties(test_ops_tunable PROPERTIES
  ENVIRONMENT "GLIBC_TUNABLES=glibc.pthread.rseq=0;PERCPU_EXPECT_MODE=${PERCPU_EXPECT_ATOMIC};PERCPU_EXPECT_VDSO_GETCPU=1"
  TIMEOUT 120)

add_test(NAME test_ops_compile_fail
  COMMAND ${CMAKE_COMMAND} -DCC=${CMAKE_C_COMPILER} -DSRC=${CMAKE_CURRENT_SOURCE_DIR}/ops_compile_fail.c
          -DINC1=${PROJECT_SOURCE_DIR}/include -DINC2=${PROJECT_BINARY_DIR}/include
          -P ${CMAKE_CURRENT_SOURCE_DIR}/ops_compile_fail.cmake)

# Default (glibc's rseq), glibc's rseq off by tunable, and atomics requested.
percpu_test(test_migration SOURCES test_migration.c STATIC TIMEOUT 300
  ENV PERCPU_EXPECT_MODE=${PCPU_RSEQ_EXPECT})
foreach(variant
    "tunable|GLIBC_TUNABLES=glibc.pthread.rseq=0;PERCPU_EXPECT_MODE=${PERCPU_EXPECT_ATOMIC}"
    "atomic|PERCPU_FASTPATH=atomic;PERCPU_EXPECT_MODE=${PERCPU_EXPECT_ATOMIC}"
    "own_rseq|GLIBC_TUNABLES=glibc.pthread.rseq=0;PERCPU_RSEQ=own;PERCPU_EXPECT_MODE=${PCPU_RSEQ_EXPECT}"
    "mm_cid|PERCPU_INDEX=mm_cid;PERCPU_EXPECT_MODE=${PCPU_RSEQ_EXPECT}")
  string(REPLACE "|" ";" parts "${variant}")
  list(GET parts 0 suffix)
  list(REMOVE_AT parts 0)
  add_test(NAME test_migration_${suffix} COMMAND test_migration)
  set_tests_properties(test_migration_${suffix} PROPERTIES ENVIRONMENT "${parts}" TIMEOUT 300)
endforeach()
if(PERCPU_EXPECT_RSEQ STREQUAL "rseq")
  set_property(TEST test_migration_mm_cid APPEND PROPERTY ENVIRONMENT PERCPU_EXPECT_INDEX=mm_cid)
endif()

# The switch from rseq to atomics mid-run needs rseq to start with.
if(PERCPU_EXPECT_RSEQ STREQUAL "rseq")
  percpu_test(test_ops_mixed SOURCES test_ops_mixed.c INTERNAL TIMEOUT 300
    ENV PERCPU_EXPECT_MODE=${PCPU_RSEQ_EXPECT})
endif()
percpu_test(test_pcpu_stack SOURCES test_pcpu_stack.c INTERNAL TIMEOUT 300)
set_tests_properties(test_pcpu_stack PROPERTIES SKIP_RETURN_CODE 77)
