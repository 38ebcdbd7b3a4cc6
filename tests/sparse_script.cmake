# cmake -DSPARSE=... -DSRC=... -DINC1=... -DINC2=... -P sparse_script.cmake
# sparse must report a direct access to a per-CPU variable or pointer
# (noderef/address space __percpu) and stay quiet about accessors.
set(incs -I${INC1} -I${INC2})
foreach(case 0 1 2)
  execute_process(COMMAND ${SPARSE} -DCASE=${case} ${incs} ${SRC}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  set(all "${out}${err}")
  if(case EQUAL 0)
    if(all MATCHES "sparse_access.c.*(noderef|address space)")
      message(FATAL_ERROR "sparse reports the accessor case:\n${all}")
    endif()
  elseif(NOT all MATCHES "sparse_access.c:[0-9]+:[0-9]+: warning: (dereference of noderef|incorrect type|cast removes address space)")
    message(FATAL_ERROR "case ${case}: sparse did not report the direct access:\n${all}")
  endif()
endforeach()
message(STATUS "sparse reports direct per-CPU accesses")
