# Setup, static per-CPU variables and simulated machines.
percpu_test(test_static SOURCES test_static.c)
percpu_test(test_static_sim SOURCES test_static.c
            ENV "PERCPU_CPUS=0-3,64-67;PERCPU_NODES=0-3\\;64-67")
percpu_test(test_static_nodes SOURCES test_static.c
            ENV "PERCPU_CPUS=96;PERCPU_NODES=0-31,32-63,64-95")
percpu_test(test_static_static_lib SOURCES test_static.c STATIC)
percpu_test(test_setup SOURCES test_setup.c)
percpu_test(test_setup_early SOURCES test_setup_early.c)
percpu_test(test_sim4096 SOURCES test_sim4096.c TIMEOUT 300
            ENV "PERCPU_CPUS=4096;PERCPU_NODES=0-511,512-1023,1024-1535,1536-2047,2048-2559,2560-3071,3072-3583,3584-4095")

# With the namespaced API, a per-CPU variable used without an accessor does not compile.
add_test(NAME test_static_access_fails
  COMMAND ${CMAKE_COMMAND} -DCC=${CMAKE_C_COMPILER} -DSRC=${CMAKE_CURRENT_SOURCE_DIR}/static_access.c
          -DINC1=${PROJECT_SOURCE_DIR}/include -DINC2=${PROJECT_BINARY_DIR}/include
          -P ${CMAKE_CURRENT_SOURCE_DIR}/static_access_script.cmake)

# With the kernel's names a direct access compiles, and sparse reports it.
find_program(SPARSE sparse)
if(SPARSE AND PERCPU_SMP)
  add_test(NAME test_sparse_percpu
    COMMAND ${CMAKE_COMMAND} -DSPARSE=${SPARSE} -DSRC=${CMAKE_CURRENT_SOURCE_DIR}/sparse_access.c
            -DINC1=${PROJECT_SOURCE_DIR}/include -DINC2=${PROJECT_BINARY_DIR}/include
            -P ${CMAKE_CURRENT_SOURCE_DIR}/sparse_script.cmake)
endif()
