# src/chunk.c: one chunk's bitmap allocator (pure; tested and fuzzed alone).
percpu_test(test_chunk SOURCES test_chunk.c INTERNAL)
percpu_test(test_chunk_model SOURCES test_chunk_model.c INTERNAL TIMEOUT 300)
if(PERCPU_SANITIZE OR CMAKE_CROSSCOMPILING)	# 5-20x slower: a quarter of the steps
  set_tests_properties(test_chunk_model PROPERTIES ENVIRONMENT PERCPU_MODEL_OPS=250000)
endif()

# The fuzz target's replay driver, with any compiler: chunk.c alone.
add_executable(fuzz_chunk_replay fuzz/fuzz_chunk.c ${PROJECT_SOURCE_DIR}/src/chunk.c)
target_compile_definitions(fuzz_chunk_replay PRIVATE FUZZ_CHUNK_REPLAY_MAIN=1)
target_include_directories(fuzz_chunk_replay PRIVATE ${PROJECT_SOURCE_DIR}/src)
add_test(NAME fuzz_chunk_replay COMMAND fuzz_chunk_replay)
set_tests_properties(fuzz_chunk_replay PROPERTIES TIMEOUT 120)

if(PERCPU_FUZZ AND CMAKE_C_COMPILER_ID MATCHES "Clang")
  add_executable(fuzz_chunk fuzz/fuzz_chunk.c ${PROJECT_SOURCE_DIR}/src/chunk.c)
  target_include_directories(fuzz_chunk PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(fuzz_chunk PRIVATE -fsanitize=fuzzer,address,undefined
    -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(fuzz_chunk PRIVATE -fsanitize=fuzzer,address,undefined)
endif()
