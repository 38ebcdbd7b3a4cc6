# The dynamic allocator (src/alloc.c): API contract, a model-based random
# test, threads, invalid frees, fault injection and memory figures.
percpu_test(test_alloc_api SOURCES test_alloc_api.c TIMEOUT 120)
add_test(NAME test_alloc_api_cpus8 COMMAND test_alloc_api)
set_tests_properties(test_alloc_api_cpus8 PROPERTIES ENVIRONMENT "PERCPU_CPUS=8" TIMEOUT 120)

# 1,000,000 steps, everything checked after each: a fixed seed and one from
# the clock (printed; PERCPU_SEED=<n> reproduces either).
# 1,000,000 steps each; sanitizer and emulated (qemu) builds run a fifth of that.
if(PERCPU_SANITIZE OR CMAKE_CROSSCOMPILING)
  set(PCPU_MODEL_ENV "PERCPU_CPUS=4;PERCPU_MODEL_OPS=200000")
else()
  set(PCPU_MODEL_ENV "PERCPU_CPUS=4")
endif()
percpu_test(test_alloc_model SOURCES test_alloc_model.c TIMEOUT 300 ENV "${PCPU_MODEL_ENV}")
add_test(NAME test_alloc_model_random COMMAND test_alloc_model random)
set_tests_properties(test_alloc_model_random PROPERTIES ENVIRONMENT "${PCPU_MODEL_ENV}" TIMEOUT 300)

# 8 threads (on however many CPUs there are: 2 on CI), frees on other threads.
percpu_test(test_alloc_stress SOURCES test_alloc_stress.c TIMEOUT 300)
add_test(NAME test_alloc_stress_atomic COMMAND test_alloc_stress)
set_tests_properties(test_alloc_stress_atomic PROPERTIES
  ENVIRONMENT "PERCPU_FASTPATH=atomic" TIMEOUT 300)

# Death tests: each invalid free aborts a forked child.
percpu_test(test_invalid_free SOURCES test_invalid_free.c TIMEOUT 120)

# Each mmap, mbind and madvise fails in turn (white box).
percpu_test(test_fault_inject SOURCES test_fault_inject.c INTERNAL TIMEOUT 120)

# 1,000,000 live 8-byte areas, 1024 possible CPUs, 2 writing: RSS figures.
percpu_test(test_alloc_memory SOURCES test_alloc_memory.c TIMEOUT 300 ENV PERCPU_CPUS=1024)
set_tests_properties(test_alloc_memory PROPERTIES SKIP_RETURN_CODE 77)

# Objects cached before a switch to atomics go back to the chunks (white box).
percpu_test(test_alloc_switch SOURCES test_alloc_switch.c INTERNAL TIMEOUT 60)
set_tests_properties(test_alloc_switch PROPERTIES SKIP_RETURN_CODE 77)
