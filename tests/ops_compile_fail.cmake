# cmake -DCC=... -DSRC=... -DINC1=... -DINC2=... -P ops_compile_fail.cmake
# A this_cpu operation on a 3- or 16-byte type must not compile, for the
# right reason; the same file with a long must compile.
set(incs -I${INC1} -I${INC2})
foreach(case 0 1 2)
  execute_process(COMMAND ${CC} -std=gnu11 -fsyntax-only -DCASE=${case} ${incs} ${SRC}
                  RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_QUIET)
  if(case EQUAL 0)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "control case does not compile:\n${err}")
    endif()
  else()
    if(rc EQUAL 0)
      message(FATAL_ERROR "case ${case}: a bad operand size compiled")
    endif()
    if(NOT err MATCHES "1, 2, 4 or 8-byte operands")
      message(FATAL_ERROR "case ${case}: failed for another reason:\n${err}")
    endif()
  endif()
endforeach()
message(STATUS "bad operand sizes are rejected at compile time")
