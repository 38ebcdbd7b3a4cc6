# Layout area: cpulist syntax, topology (fake sysfs trees), the first
# chunk's layout and its boot report, and the percpu-info tool.
percpu_test(test_cpulist SOURCES test_cpulist.c INTERNAL)
percpu_test(test_topology SOURCES test_topology.c INTERNAL)
percpu_test(test_layout SOURCES test_layout.c INTERNAL)

# The installed tool: exact reports, --help, bad values (exit 2, one line).
add_test(NAME test_percpu_info
         COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_percpu_info.sh
                 ${CMAKE_CROSSCOMPILING_EMULATOR} $<TARGET_FILE:percpu-info>)
set_tests_properties(test_percpu_info PROPERTIES TIMEOUT 60)
