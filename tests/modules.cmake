# Shared libraries with static per-CPU variables: tests/test_modules*.c and
# the test libraries tests/modlib_*.c (see tests/modlib.h).
function(percpu_modlib name)
  add_library(${name} SHARED ${ARGN})
  target_link_libraries(${name} PRIVATE percpu)
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
endfunction()

percpu_modlib(modlib_a modlib_a.c modlib_a2.c)		# linked at start-up
percpu_modlib(modlib_ctor modlib_ctor.c)		# linked; uses its vars before setup
percpu_modlib(modlib_b modlib_b.c modlib_b2.c)		# dlopen'ed
percpu_modlib(modlib_c modlib_c.c)			# dlopen'ed, load/unload loop
target_link_libraries(modlib_b PRIVATE modlib_a)
target_link_libraries(modlib_c PRIVATE modlib_a)
percpu_modlib(modlib_rseq modlib_rseq.c)
# The negative control: compiled as PIE code, so ops.h does not clear rseq_cs.
percpu_modlib(modlib_rseq_noclear modlib_rseq.c)
target_compile_definitions(modlib_rseq_noclear PRIVATE __PIE__=2)
percpu_modlib(modlib_big modlib_big.c)

percpu_test(test_modules SOURCES test_modules.c LIBS modlib_a modlib_ctor TIMEOUT 300)
target_compile_definitions(test_modules PRIVATE
  MODLIB_B_PATH="$<TARGET_FILE:modlib_b>" MODLIB_C_PATH="$<TARGET_FILE:modlib_c>")
add_dependencies(test_modules modlib_b modlib_c)
foreach(variant
    "sim|PERCPU_CPUS=0-3,64-67"
    "dynamic|PERCPU_RESERVED=4K;PERCPU_EXPECT_PLACE=dynamic;PERCPU_CPUS=6"
    "noreserve|PERCPU_RESERVED=0;PERCPU_EXPECT_PLACE=dynamic"
    "atomic|PERCPU_FASTPATH=atomic")
  string(REPLACE "|" ";" parts "${variant}")
  list(GET parts 0 suffix)
  list(REMOVE_AT parts 0)
  add_test(NAME test_modules_${suffix} COMMAND test_modules)
  set_tests_properties(test_modules_${suffix} PROPERTIES ENVIRONMENT "${parts}" TIMEOUT 300)
endforeach()

percpu_test(test_modules_early SOURCES test_modules_early.c LIBS modlib_a)

percpu_test(test_modules_rseq SOURCES test_modules_rseq.c TIMEOUT 300)
target_compile_definitions(test_modules_rseq PRIVATE
  MODLIB_RSEQ_PATH="$<TARGET_FILE:modlib_rseq>"
  MODLIB_RSEQ_NOCLEAR_PATH="$<TARGET_FILE:modlib_rseq_noclear>")
add_dependencies(test_modules_rseq modlib_rseq modlib_rseq_noclear)

add_executable(test_modules_big_linked test_modules_big_linked.c)
target_link_libraries(test_modules_big_linked PRIVATE percpu modlib_big)
target_include_directories(test_modules_big_linked PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
percpu_test(test_modules_abort SOURCES test_modules_abort.c)
set_tests_properties(test_modules_abort PROPERTIES SKIP_RETURN_CODE 77)
target_compile_definitions(test_modules_abort PRIVATE
  MODLIB_BIG_PATH="$<TARGET_FILE:modlib_big>"
  MODLIB_BIG_LINKED_PATH="$<TARGET_FILE:test_modules_big_linked>")
add_dependencies(test_modules_abort modlib_big test_modules_big_linked)
