# The fast-path modes tests must see: rseq where the machine has it; the
# atomic fallback under qemu-user (no rseq) and ThreadSanitizer (src/rseq.c
# chooses it); "up" in the uniprocessor build.
if(NOT PERCPU_SMP)
  set(PERCPU_EXPECT_RSEQ up)
  set(PERCPU_EXPECT_ATOMIC up)
elseif(CMAKE_CROSSCOMPILING OR PERCPU_SANITIZE MATCHES "thread")
  set(PERCPU_EXPECT_RSEQ atomic)
  set(PERCPU_EXPECT_ATOMIC atomic)
else()
  set(PERCPU_EXPECT_RSEQ rseq)
  set(PERCPU_EXPECT_ATOMIC atomic)
endif()

# Under qemu-user (cross builds) RSS is qemu's, and a test cannot re-exec
# itself (no binfmt_misc is assumed): tests skip those checks there.
if(CMAKE_CROSSCOMPILING)
  add_compile_definitions(PERCPU_TEST_EMULATED=1)
endif()

# percpu_test(NAME SOURCES... [LIBS ...] [ENV ...] [TIMEOUT s] [STATIC])
# builds tests/NAME from SOURCES linked with libpercpu and registers it.
function(percpu_test name)
  cmake_parse_arguments(T "STATIC;INTERNAL" "TIMEOUT" "SOURCES;LIBS;ENV;ARGS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  if(T_INTERNAL)
    # White-box tests link the objects directly and see src/.
    target_sources(${name} PRIVATE $<TARGET_OBJECTS:percpu_objects>)
    target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src
      ${PROJECT_SOURCE_DIR}/include ${PROJECT_BINARY_DIR}/include)
    target_link_libraries(${name} PRIVATE Threads::Threads ${CMAKE_DL_LIBS} ${T_LIBS})
  elseif(T_STATIC)
    target_link_libraries(${name} PRIVATE percpu_static ${T_LIBS})
  else()
    target_link_libraries(${name} PRIVATE percpu ${T_LIBS})
  endif()
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT})
  if(T_ENV)
    set_tests_properties(${name} PROPERTIES ENVIRONMENT "${T_ENV}")
  endif()
endfunction()
