# cnnc_add_network(<target> <file.net> [BATCH n]): compile a .net file with cnnc at build time
# and build <target>, a trainer with the same command line as `cnnc run <file.net>`.
# Also usable from another project after add_subdirectory(<path to cnnc>).
include(CheckCCompilerFlag)
option(CNNC_NATIVE "Compile generated networks for this machine's CPU (-march=native)" ON)
check_c_compiler_flag(-march=native CNNC_HAVE_MARCH_NATIVE)
# The flags a compiled network gets for speed: the generated loops have constant bounds, and
# with the machine's full vector width (AVX-512 here) they run a few percent faster.
set(CNNC_NATIVE_FLAGS "")
if(CNNC_NATIVE AND CNNC_HAVE_MARCH_NATIVE)
  set(CNNC_NATIVE_FLAGS -march=native)
endif()

function(cnnc_add_network target net)
  cmake_parse_arguments(ARG "" "BATCH" "" ${ARGN})
  get_filename_component(net_path "${net}" ABSOLUTE)
  set(c_file "${CMAKE_CURRENT_BINARY_DIR}/${target}.c")
  set(h_file "${CMAKE_CURRENT_BINARY_DIR}/${target}.h")
  set(batch_args "")
  if(ARG_BATCH)
    set(batch_args --batch ${ARG_BATCH})
  endif()
  add_custom_command(
    OUTPUT "${c_file}" "${h_file}"
    COMMAND cnnc "${net_path}" -o "${c_file}" -H "${h_file}" ${batch_args}
    DEPENDS cnnc "${net_path}"
    COMMENT "cnnc ${net}"
    VERBATIM)
  add_executable(${target} "${c_file}")
  target_link_libraries(${target} PRIVATE cnnrt)
  target_include_directories(${target} PUBLIC "${CMAKE_CURRENT_BINARY_DIR}")
  # cnnc's output must compile warning-free, pedantic included.
  target_compile_options(${target} PRIVATE -Wall -Wextra -pedantic -Werror ${CNNC_NATIVE_FLAGS})
endfunction()
