# cmake -DCC=... -DSRC=... -DINC1=... -DINC2=... -P static_access_script.cmake
# A namespaced per-CPU variable used without an accessor must not compile
# (for the right reason: the name is not declared); through one it must.
set(incs -I${INC1} -I${INC2})
foreach(case 0 1 2)
  execute_process(COMMAND ${CC} -std=gnu11 -fsyntax-only -DCASE=${case} ${incs} ${SRC}
                  RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_QUIET)
  if(case EQUAL 0 AND NOT rc EQUAL 0)
    message(FATAL_ERROR "the accessor case does not compile:\n${err}")
  elseif(NOT case EQUAL 0)
    if(rc EQUAL 0)
      message(FATAL_ERROR "case ${case}: a direct access compiled")
    endif()
    if(NOT err MATCHES "hits")
      message(FATAL_ERROR "case ${case}: failed for another reason:\n${err}")
    endif()
  endif()
endforeach()
message(STATUS "direct accesses to namespaced per-CPU variables do not compile")
